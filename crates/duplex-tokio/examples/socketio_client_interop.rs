//! The duplex Socket.IO client against a server with the handlers of
//! shared/conformance/socketio-suites.md (the Node reference server started
//! by scripts/conformance/suite-20-socketio.sh, or `duplex conformance-server`).
//!
//! ```text
//! cargo run --release -p duplex-tokio --example socketio_client_interop -- \
//!     http://127.0.0.1:3000 <polling|websocket|upgrade> [--reference]
//! ```
//!
//! `--reference` adds the checks that need the extra handlers of
//! scripts/conformance/socketio/reference-server.mjs: `transport` (acks
//! with the transport's name: the mode is really in use) and `kill` (the
//! server drops the connection: the client reconnects). Prints one line per check and
//! `socketio-rust-client-<mode>: N passed, N failed`; exits non-zero on a
//! failure.

use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::socketio::Value;
use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};

const WAIT: Duration = Duration::from_secs(5);

type Check = Result<(), String>;

fn bin(bytes: &[u8]) -> Value {
    Value::Binary(Bytes::copy_from_slice(bytes))
}

fn obj(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// The next event other than `Connect`/`Disconnect` noise we do not wait for.
async fn next(socket: &mut ClientSocket) -> Result<ClientEvent, String> {
    match tokio::time::timeout(WAIT, socket.next_event()).await {
        Err(_) => Err("timed out waiting for an event".into()),
        Ok(None) => Err("the manager closed".into()),
        Ok(Some(e)) => Ok(e),
    }
}

async fn expect_connect(socket: &mut ClientSocket) -> Result<String, String> {
    loop {
        match next(socket).await? {
            ClientEvent::Connect { sid, .. } => return Ok(sid),
            ClientEvent::ConnectError { data } => return Err(format!("connect_error {data:?}")),
            _ => {}
        }
    }
}

async fn expect_event(socket: &mut ClientSocket, name: &str) -> Result<Vec<Value>, String> {
    loop {
        if let ClientEvent::Event { name: n, args, .. } = next(socket).await? {
            if n == name {
                return Ok(args);
            }
        }
    }
}

fn same(got: &[Value], want: &[Value]) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

fn manager(url: &str, transports: ClientTransports) -> Manager {
    let mut config = ClientConfig::new(url);
    config.transports = transports;
    config.reconnection_delay = Duration::from_millis(100);
    config.reconnection_delay_max = Duration::from_millis(500);
    Manager::new(config)
}

/// Connects `/` with `auth` and reads the server's `auth` event.
async fn connected(
    url: &str,
    transports: ClientTransports,
    auth: Option<Value>,
) -> Result<(Manager, ClientSocket), String> {
    let m = manager(url, transports);
    let mut s = m.socket("/", auth);
    expect_connect(&mut s).await?;
    expect_event(&mut s, "auth").await?;
    Ok((m, s))
}

async fn round_trip(url: &str, t: ClientTransports, args: Vec<Value>) -> Check {
    let (m, mut s) = connected(url, t, None).await?;
    s.emit("message", args.clone());
    let back = expect_event(&mut s, "message-back").await?;
    m.close();
    same(&back, &args)
}

/// Runs every check; returns (name, outcome) pairs.
pub(crate) async fn run_checks(
    url: &str,
    t: ClientTransports,
    reference: bool,
) -> Vec<(&'static str, Check)> {
    let mut results: Vec<(&'static str, Check)> = Vec::new();

    results.push((
        "connect with an auth payload",
        async {
            let auth = obj(&[("token", Value::from("abc"))]);
            let m = manager(url, t);
            let mut s = m.socket("/", Some(auth.clone()));
            expect_connect(&mut s).await?;
            let got = expect_event(&mut s, "auth").await?;
            m.close();
            same(&got, &[auth])
        }
        .await,
    ));

    results.push((
        "events with JSON arguments",
        round_trip(
            url,
            t,
            vec![
                Value::from(1),
                Value::from("2"),
                Value::from(serde_json::json!({"3": [true, false, null], "n": {"x": 1.5}})),
                Value::Array(vec![]),
            ],
        )
        .await,
    ));

    results.push((
        "UTF-8 beyond the BMP and U+2028",
        round_trip(
            url,
            t,
            vec![
                Value::from("h\u{e9}llo \u{1F600} \u{1D11E} \u{2028} \u{2029}"),
                Value::from("\u{1F680}".repeat(5000)),
            ],
        )
        .await,
    ));

    results.push((
        "binary attachments, nested and empty",
        round_trip(
            url,
            t,
            vec![
                bin(&[1, 2, 3]),
                obj(&[
                    ("a", bin(&[])),
                    (
                        "b",
                        Value::Array(vec![bin(&[255, 0]), obj(&[("c", bin(b"x"))])]),
                    ),
                ]),
                bin(&[]),
            ],
        )
        .await,
    ));

    results.push((
        "ack from the server, with binary",
        async {
            let (m, s) = connected(url, t, None).await?;
            let args = vec![Value::from(7), bin(&[9, 8])];
            let reply = s
                .emit_with_ack("message-with-ack", args.clone(), Some(WAIT))
                .await
                .map_err(|e| e.to_string())?;
            m.close();
            same(&reply, &args)
        }
        .await,
    ));

    results.push((
        "ack from the client (server-initiated), with binary",
        async {
            let (m, mut s) = connected(url, t, None).await?;
            s.emit("server-ack", vec![Value::from("x"), bin(&[1])]);
            let acked = loop {
                match next(&mut s).await? {
                    ClientEvent::Event { name, args, ack } if name == "please-ack" => {
                        let ack = ack.ok_or("please-ack without an ack id")?;
                        let mut reply = args;
                        reply.push(bin(&[42]));
                        ack.send(reply);
                    }
                    ClientEvent::Event { name, args, .. } if name == "client-acked" => break args,
                    _ => {}
                }
            };
            m.close();
            same(&acked, &[Value::from("x"), bin(&[1]), bin(&[42])])
        }
        .await,
    ));

    results.push((
        "namespaces multiplexed on one connection",
        async {
            let m = manager(url, t);
            let mut main = m.socket("/", None);
            let mut custom = m.socket("/custom", Some(obj(&[("ns", Value::from("custom"))])));
            let a = expect_connect(&mut main).await?;
            let b = expect_connect(&mut custom).await?;
            if a == b {
                return Err("the two namespaces got the same socket id".into());
            }
            same(
                &expect_event(&mut custom, "auth").await?,
                &[obj(&[("ns", Value::from("custom"))])],
            )?;
            custom.emit("message", vec![Value::from("to custom")]);
            main.emit("message", vec![Value::from("to main")]);
            same(
                &expect_event(&mut custom, "message-back").await?,
                &[Value::from("to custom")],
            )?;
            same(
                &expect_event(&mut main, "message-back").await?,
                &[Value::from("to main")],
            )?;
            custom.disconnect();
            main.emit("message", vec![Value::from("still")]);
            same(
                &expect_event(&mut main, "message-back").await?,
                &[Value::from("still")],
            )?;
            m.close();
            Ok(())
        }
        .await,
    ));

    results.push((
        "an unknown namespace is refused with 'Invalid namespace'",
        async {
            let m = manager(url, t);
            let mut s = m.socket("/random", None);
            let outcome = loop {
                match next(&mut s).await? {
                    ClientEvent::ConnectError { data } => break data,
                    ClientEvent::Connect { .. } => return Err("connected to /random".into()),
                    _ => {}
                }
            };
            m.close();
            match outcome.get("message").and_then(Value::as_str) {
                Some("Invalid namespace") => Ok(()),
                _ => Err(format!("unexpected connect_error {outcome:?}")),
            }
        }
        .await,
    ));

    if reference {
        let want = match t {
            ClientTransports::Polling => "polling",
            _ => "websocket",
        };
        results.push((
            "the transport in use is the mode's",
            async {
                let (m, s) = connected(url, t, None).await?;
                let reply = s
                    .emit_with_ack("transport", vec![], Some(WAIT))
                    .await
                    .map_err(|e| e.to_string())?;
                m.close();
                same(&reply, &[Value::from(want)])
            }
            .await,
        ));
        results.push((
            "reconnects after the server drops the connection",
            async {
                let (m, mut s) = connected(url, t, None).await?;
                s.emit("kill", vec![]);
                loop {
                    if let ClientEvent::Disconnect { .. } = next(&mut s).await? {
                        break;
                    }
                }
                expect_connect(&mut s).await?;
                expect_event(&mut s, "auth").await?;
                s.emit("message", vec![Value::from("again")]);
                let back = expect_event(&mut s, "message-back").await?;
                m.close();
                same(&back, &[Value::from("again")])
            }
            .await,
        ));
    }
    results
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: socketio_client_interop <url> <polling|websocket|upgrade> [--reference]");
        return std::process::ExitCode::from(2);
    };
    let transports = match mode.as_str() {
        "polling" => ClientTransports::Polling,
        "websocket" => ClientTransports::WebSocket,
        "upgrade" => ClientTransports::PollingThenWebSocket,
        _ => {
            eprintln!("unknown mode {mode}");
            return std::process::ExitCode::from(2);
        }
    };
    let reference = args.iter().any(|a| a == "--reference");
    let results = run_checks(url, transports, reference).await;
    let mut failed = 0;
    for (name, outcome) in &results {
        match outcome {
            Ok(()) => println!("  ok   {mode}: {name}"),
            Err(e) => {
                failed += 1;
                println!("  FAIL {mode}: {name}: {e}");
            }
        }
    }
    println!(
        "socketio-rust-client-{mode}: {} passed, {failed} failed",
        results.len() - failed
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
