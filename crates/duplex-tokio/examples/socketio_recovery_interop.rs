//! Connection state recovery, as the duplex Socket.IO client sees it,
//! against a server with the handlers of
//! shared/conformance/socketio-recovery.md (`duplex conformance-server`'s
//! `/recovery/`, or the Node server with `connectionStateRecovery` that
//! scripts/conformance/suite-27-recovery.sh starts).
//!
//! ```text
//! cargo run --release -p duplex-tokio --example socketio_recovery_interop -- \
//!     http://127.0.0.1:3000 <polling|websocket|upgrade> [--path /recovery/]
//! ```
//!
//! The client goes through a loopback TCP proxy of its own, which cuts
//! every connection (RST, then FIN in a second check) after ten ticks of a
//! stream the client asked for, refuses connections for a while, then lets
//! the client back. Each check passes when the client comes back recovered
//! (`ClientEvent::Connect { recovered: true }`, the same sid), the server
//! says so too (`whoami`), the room and the data are back, and every tick
//! arrived exactly once and in order. Prints one line per check and
//! `socketio-rust-client-recovery-<mode>: N passed, N failed`; exits
//! non-zero on a failure.

use std::net::SocketAddr;
use std::time::Duration;

use duplex_tokio::socketio::Value;
use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};

const WAIT: Duration = Duration::from_secs(5);

/// Ticks of each check's stream, and the one after which the cut comes.
const TICKS: u64 = 40;
const CUT_AFTER: u64 = 9;

type Check = Result<(), String>;

// The fault proxy is shared with the fault test of the recovery
// (tests/socketio_recovery_faults.rs).
#[path = "../tests/socketio_common/proxy.rs"]
mod proxy;
pub(crate) use proxy::Proxy;

async fn next(socket: &mut ClientSocket) -> Result<ClientEvent, String> {
    match tokio::time::timeout(WAIT, socket.next_event()).await {
        Err(_) => Err("timed out waiting for an event".into()),
        Ok(None) => Err("the manager closed".into()),
        Ok(Some(e)) => Ok(e),
    }
}

/// Ticks of stream `id` seen so far, and whether `stream-end` came.
#[derive(Default)]
struct Ticks {
    seen: Vec<u64>,
    ends: u32,
}

impl Ticks {
    /// Takes a `tick`/`stream-end` event of stream `id`; false for others.
    fn take(&mut self, id: &str, name: &str, args: &[Value]) -> bool {
        if args.first().and_then(Value::as_str) != Some(id) {
            return false;
        }
        let n = match args.get(1) {
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        match (name, n) {
            ("tick", Some(seq)) => self.seen.push(seq),
            ("stream-end", Some(_)) => self.ends += 1,
            _ => return false,
        }
        true
    }

    fn check(&self) -> Check {
        let want: Vec<u64> = (0..TICKS).collect();
        if self.seen != want {
            return Err(format!("ticks {:?}, want 0..{TICKS} once each", self.seen));
        }
        if self.ends != 1 {
            return Err(format!("stream-end came {} times", self.ends));
        }
        Ok(())
    }
}

async fn ack(socket: &ClientSocket, event: &str, args: Vec<Value>) -> Result<Value, String> {
    let reply = socket
        .emit_with_ack(event, args, Some(WAIT))
        .await
        .map_err(|e| format!("{event}: {e}"))?;
    reply
        .into_iter()
        .next()
        .ok_or_else(|| format!("{event}: empty ack"))
}

fn manager(url: &str, path: &str, transports: ClientTransports) -> Manager {
    let mut config = ClientConfig::new(url);
    config.path = path.to_owned();
    config.transports = transports;
    config.reconnection_delay = Duration::from_millis(100);
    config.reconnection_delay_max = Duration::from_millis(500);
    Manager::new(config)
}

/// How long the client is kept away: 1 s on WebSocket, where the server
/// sees the cut at once; on polling, long enough for the server's ping
/// timeout (the contract's 1 s + 1 s) to end the old session first, or the
/// pid would still name a connected socket.
fn away(transports: ClientTransports) -> Duration {
    match transports {
        ClientTransports::WebSocket => Duration::from_secs(1),
        _ => Duration::from_millis(3500),
    }
}

/// One cut and the recovery after it.
async fn cut_and_recover(
    upstream: SocketAddr,
    path: &str,
    transports: ClientTransports,
    rst: bool,
) -> Check {
    let proxy = Proxy::start(upstream)
        .await
        .map_err(|e| format!("proxy: {e}"))?;
    let m = manager(&format!("http://{}", proxy.addr), path, transports);
    let result = recover_through(&proxy, &m, transports, rst).await;
    m.close();
    result
}

async fn recover_through(
    proxy: &Proxy,
    m: &Manager,
    transports: ClientTransports,
    rst: bool,
) -> Check {
    let mut s = m.socket("/", None);
    let sid = match next(&mut s).await? {
        ClientEvent::Connect {
            sid,
            recovered: false,
        } => sid,
        other => return Err(format!("first event {other:?}")),
    };
    ack(&s, "join", vec![Value::from("room-r")]).await?;
    let data = Value::from(serde_json::json!({"k": "v", "n": [1, 2]}));
    ack(&s, "set-data", vec![data.clone()]).await?;
    let stream = serde_json::json!({"id": "s1", "n": TICKS, "intervalMs": 25});
    let ok = ack(&s, "stream", vec![Value::from(stream)]).await?;
    if ok.get("ok") != Some(&Value::Bool(true)) {
        return Err(format!("stream refused: {ok:?}"));
    }
    let mut ticks = Ticks::default();
    while ticks.seen.last().is_none_or(|&last| last < CUT_AFTER) {
        if let ClientEvent::Event { name, args, .. } = next(&mut s).await? {
            ticks.take("s1", &name, &args);
        }
    }
    proxy.cut(rst);
    loop {
        match next(&mut s).await? {
            ClientEvent::Disconnect { .. } => break,
            ClientEvent::Event { name, args, .. } => {
                ticks.take("s1", &name, &args);
            }
            _ => {}
        }
    }
    tokio::time::sleep(away(transports)).await;
    proxy.reopen();
    loop {
        match next(&mut s).await? {
            ClientEvent::Connect {
                sid: again,
                recovered,
            } => {
                if !recovered || again != sid {
                    return Err(format!(
                        "came back as {again} (was {sid}), recovered: {recovered}"
                    ));
                }
                break;
            }
            // Refused attempts while the proxy is closed.
            ClientEvent::ConnectError { .. } | ClientEvent::Disconnect { .. } => {}
            other => return Err(format!("before the reconnection: {other:?}")),
        }
    }
    while ticks.ends == 0 {
        if let ClientEvent::Event { name, args, .. } = next(&mut s).await? {
            ticks.take("s1", &name, &args);
        }
    }
    ticks.check()?;
    let me = ack(&s, "whoami", Vec::new()).await?;
    if me.get("recovered") != Some(&Value::Bool(true))
        || me.get("id") != Some(&Value::from(sid.as_str()))
    {
        return Err(format!("whoami: {me:?}"));
    }
    let in_room = matches!(me.get("rooms"), Some(Value::Array(rooms)) if rooms.contains(&Value::from("room-r")));
    if !in_room {
        return Err(format!("the room is not back: {me:?}"));
    }
    let got = ack(&s, "get-data", Vec::new()).await?;
    if got != data {
        return Err(format!("data {got:?}, want {data:?}"));
    }
    // Nothing more: no tick twice after the end.
    match tokio::time::timeout(Duration::from_millis(300), s.next_event()).await {
        Ok(Some(ClientEvent::Event { name, args, .. })) => {
            Err(format!("after the end: {name} {args:?}"))
        }
        _ => Ok(()),
    }
}

/// The mode's name in the output.
pub(crate) fn mode_name(transports: ClientTransports) -> &'static str {
    match transports {
        ClientTransports::Polling => "polling",
        ClientTransports::WebSocket => "websocket",
        ClientTransports::PollingThenWebSocket => "upgrade",
    }
}

/// Runs the checks of one mode against the server at `url`.
pub(crate) async fn run_checks(
    url: &str,
    path: &str,
    transports: ClientTransports,
) -> Vec<(String, Check)> {
    let upstream: Result<SocketAddr, String> = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("{url}: not http://<ip>:<port>: {e}"));
    let mode = mode_name(transports);
    let mut results = Vec::new();
    for rst in [true, false] {
        let name = format!("{}-cut-{mode}", if rst { "rst" } else { "fin" });
        let outcome = match &upstream {
            Ok(addr) => cut_and_recover(*addr, path, transports, rst).await,
            Err(e) => Err(e.clone()),
        };
        results.push((name, outcome));
    }
    results
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.first().cloned().unwrap_or_default();
    let transports = match args.get(1).map(String::as_str) {
        Some("polling") => ClientTransports::Polling,
        Some("upgrade") => ClientTransports::PollingThenWebSocket,
        _ => ClientTransports::WebSocket,
    };
    let path = args
        .iter()
        .position(|a| a == "--path")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "/recovery/".to_owned());
    let results = run_checks(&url, &path, transports).await;
    let mut failed = 0;
    for (name, outcome) in &results {
        match outcome {
            Ok(()) => println!("  PASS {name}"),
            Err(e) => {
                failed += 1;
                println!("  FAIL {name}: {e}");
            }
        }
    }
    println!(
        "socketio-rust-client-recovery-{}: {} passed, {failed} failed",
        mode_name(transports),
        results.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
