//! A hyper server on 127.0.0.1 and a `redis-server` of the test's own,
//! for the cluster tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::socketio::{AckSender, Args, Socket, Value};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// Serves `service` on a fresh loopback port.
pub async fn serve<S>(service: S) -> SocketAddr
where
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<Full<Bytes>>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    addr
}

/// A `redis-server` of the test's own, stopped when dropped.
pub struct Redis {
    /// The process (a test may kill and restart it).
    pub child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` on a free loopback port (no persistence), or
/// `None` with a message when it is not installed.
pub async fn redis() -> Option<Redis> {
    if Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: redis-server is not on PATH (apt-get install redis-server)");
        return None;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let redis = Redis {
        child: spawn_redis(port),
        port,
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(redis);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not listen on {port}");
}

fn spawn_redis(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

impl Redis {
    /// Kills the server (Redis goes away without a word).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.child = spawn_redis(self.port);
    }

    /// Its URL, as the adapters and clients take it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// An adapter configuration for this server, speaking `mode`.
    pub fn config(&self, mode: duplex_redis::RedisMode) -> duplex_redis::RedisAdapterConfig {
        let mut config = duplex_redis::RedisAdapterConfig::new(self.url());
        config.mode = mode;
        config
    }
}

/// Whether `done` comes true within `wait` (polled every 20 ms).
pub async fn eventually(wait: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The tests' `join` event: the socket joins the room its first argument
/// names, then acks with no arguments (when asked to).
pub fn join(socket: Socket, Args(args): Args, ack: Option<AckSender>) {
    if let Some(room) = args.first().and_then(Value::as_str) {
        socket.join(room);
    }
    acked(ack);
}

/// Acks with no arguments, if the client asked for an ack.
pub fn acked(ack: Option<AckSender>) {
    if let Some(ack) = ack {
        let _ = ack.send_args(vec![]);
    }
}

/// Attaches a Redis adapter made of `config` to `io` and waits (bounded)
/// until it is connected.
pub async fn attach(
    io: &duplex_tokio::socketio::SocketIo,
    config: duplex_redis::RedisAdapterConfig,
) -> duplex_redis::RedisAdapter {
    let adapter = duplex_redis::RedisAdapter::attach(io, config).unwrap();
    assert!(
        eventually(Duration::from_secs(2), || adapter.is_connected()).await,
        "the adapter connects to Redis"
    );
    adapter
}
