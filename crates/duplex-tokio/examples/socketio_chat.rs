//! A small Socket.IO chat server: rooms, broadcasts to all but the sender,
//! acks, per-socket state, and the server mounted next to other routes.
//!
//! ```text
//! cargo run -p duplex-tokio --example socketio_chat -- 127.0.0.1:3000
//! ```
//!
//! Then, from Node: `io("http://127.0.0.1:3000")`, `emit("join", "lobby")`,
//! `emit("say", "hello", ack)`; other members of the room get `said`.

use std::convert::Infallible;

use bytes::Bytes;
use duplex_tokio::socketio::{
    AckSender, Args, Data, DisconnectReason, Extension, Socket, SocketIo, SocketIoConfig,
};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

mod support;

/// The room a socket is in, kept in its extensions.
#[derive(Clone)]
struct Room(String);

fn chat() -> SocketIo {
    SocketIo::builder(SocketIoConfig::default())
        .namespace("/", |ns| {
            ns.on_connect(|socket: Socket| {
                let _ = socket.emit("welcome", socket.id().as_str());
            })
            .on(
                "join",
                |socket: Socket, Data(room): Data<String>, ack: AckSender| {
                    if let Some(Room(old)) = socket.extensions().insert(Room(room.clone())) {
                        socket.leave(&old);
                    }
                    socket.join(&room);
                    let _ = socket.to(&room).emit("joined", socket.id().as_str());
                    let _ = ack.send(&room);
                },
            )
            .on(
                "say",
                |socket: Socket,
                 Args(args): Args,
                 room: Option<Extension<Room>>,
                 ack: AckSender| {
                    let sent = match room {
                        Some(Extension(Room(room))) => socket.to(&room).emit_args("said", args),
                        None => socket.broadcast().emit_args("said", args),
                    };
                    let _ = ack.send(&sent.unwrap_or(0));
                },
            )
            .on_disconnect(|socket: Socket, reason: DisconnectReason| {
                println!("{} left: {reason}", socket.id())
            })
        })
        .build()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let io = chat();
    let listener = support::listener().await?;
    println!(
        "chat on http://{}/ (Socket.IO at /socket.io/)",
        listener.local_addr()?
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        let io = io.clone();
        // A router: Socket.IO under its mount path, something else elsewhere.
        let route = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let io = io.clone();
            async move {
                if req.uri().path().starts_with("/socket.io/") {
                    return Ok::<_, Infallible>(io.handle(req).await);
                }
                let mut resp =
                    hyper::Response::new(Full::new(Bytes::from_static(b"chat server\n")));
                if req.uri().path() != "/" {
                    *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
                }
                Ok(resp)
            }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), route)
                .with_upgrades(),
        );
    }
}
