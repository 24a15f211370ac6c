//! The fault test of connection state recovery (issue #16): 50 duplex
//! Rust clients reach a duplex server through a loopback proxy
//! (socketio_common/proxy.rs) while the server streams numbered events to
//! each socket directly and to a few rooms, without a pause. All the
//! clients are cut at once by each fault in turn (FIN, RST, a blackhole
//! that only the ping timeouts notice), kept away until the server has seen
//! every one of them go, then let through again. Each client checks its
//! sequence per stream.
//!
//! With recovery on: every client comes back `recovered`, with the same
//! sid, and 0 events are lost or duplicated. With recovery off: nothing is
//! duplicated either, the loss is certain (the server streams on while the
//! clients are away) and printed as `recovery off (<mode>): N of M events
//! lost (X %)`. One test per transport mode: WebSocket only, polling only,
//! polling then upgrade (each cut comes after the upgrade, each
//! reconnection upgrades again).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;
// Not a `mod` of socketio_common: tests/socketio_client_recovery.rs has
// both, and the proxy through the example too.
#[path = "socketio_common/proxy.rs"]
mod proxy;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use duplex_polling::TransportName;
use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};
use duplex_tokio::socketio::{
    DisconnectReason, RecoveryConfig, Socket, SocketIo, SocketIoConfig, State, Value,
};
use proxy::{Fault, Proxy};
use tokio::sync::watch;

const CLIENTS: u64 = 50;
const ROOMS: u64 = 5;
/// One event to each socket and one to each room per tick.
const TICK: Duration = Duration::from_millis(50);
/// [`TICK`], or `FAULTS_TICK_MS` to stress the run (at 5 ms the clients
/// and the server fall behind, and the ping timeouts that follow show what
/// the cut rounds cannot: see docs/socketio-recovery.md).
fn tick() -> Duration {
    std::env::var("FAULTS_TICK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(TICK, Duration::from_millis)
}

/// Ping interval and timeout alike: short, so that a blackhole is noticed
/// within about a second, and not so short that a loaded machine misses
/// pongs.
const PING: Duration = Duration::from_millis(500);
/// The bound of every wait of a phase.
const PHASE: Duration = Duration::from_secs(20);

fn room_of(client: u64) -> String {
    format!("room-{}", client % ROOMS)
}

/// The server side: each client's current socket, and who is connected.
#[derive(Default)]
struct Hub {
    sockets: Mutex<HashMap<u64, Socket>>,
    /// The connected clients, with their socket's id.
    online: Mutex<HashMap<u64, String>>,
    /// Clients that connected again while their old socket was still
    /// connected (client, old sid).
    overtaken: Mutex<Vec<(u64, String)>>,
    /// The disconnect reasons since the last cut.
    reasons: Mutex<Vec<DisconnectReason>>,
}

fn client_of(socket: &Socket) -> u64 {
    socket.handshake().auth.to_json()["client"]
        .as_u64()
        .expect("auth without a client number")
}

async fn server(recovery: bool) -> (SocketIo, std::net::SocketAddr, Arc<Hub>) {
    let hub = Arc::new(Hub::default());
    let config = SocketIoConfig {
        ping_interval: PING,
        ping_timeout: PING,
        connection_state_recovery: recovery.then(|| RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            // The whole run's packets, so that no bound but the one under
            // test can end a session.
            max_packets: 200_000,
            ..RecoveryConfig::default()
        }),
        ..SocketIoConfig::default()
    };
    let io = SocketIo::builder(config)
        .with_state(hub.clone())
        .namespace("/", |ns| {
            ns.on_connect(|socket: Socket, State(hub): State<Arc<Hub>>| {
                let client = client_of(&socket);
                // A restored socket is back in its rooms already; joining
                // again changes nothing.
                socket.join(&room_of(client));
                let sid = socket.id().as_str().to_owned();
                if let Some(old) = hub.online.lock().unwrap().insert(client, sid) {
                    // A new socket while the old one is still connected:
                    // the client noticed the loss of its connection first.
                    hub.overtaken.lock().unwrap().push((client, old));
                }
                hub.sockets.lock().unwrap().insert(client, socket);
            })
            .on_disconnect(
                |socket: Socket, reason: DisconnectReason, State(hub): State<Arc<Hub>>| {
                    hub.reasons.lock().unwrap().push(reason);
                    let mut online = hub.online.lock().unwrap();
                    let client = client_of(&socket);
                    if online.get(&client).map(String::as_str) == Some(socket.id().as_str()) {
                        online.remove(&client);
                    }
                },
            )
        })
        .build();
    let addr = socketio_common::serve(io.clone()).await;
    (io, addr, hub)
}

/// How many events each stream was sent in all.
struct Sent {
    direct: HashMap<u64, u64>,
    rooms: HashMap<String, u64>,
    /// The first `direct` number each socket (by sid) was sent: under
    /// load a client can give up on an attempt whose socket the server
    /// already streams to (its CONNECT answer came after the client's
    /// timeout), and what that socket was sent never reaches the client.
    first_direct: HashMap<String, u64>,
}

/// Emits `direct` [seq] to each known client's socket and `room`
/// [room, seq] to each room every tick until `stop`. A client's socket is
/// emitted to even while it is away: with recovery on the events wait for
/// it, with recovery off they are lost.
async fn stream(io: SocketIo, hub: Arc<Hub>, mut stop: watch::Receiver<bool>) -> Sent {
    let mut sent = Sent {
        direct: HashMap::new(),
        rooms: (0..ROOMS).map(|r| (room_of(r), 0)).collect(),
        first_direct: HashMap::new(),
    };
    let mut tick = tokio::time::interval(tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return sent,
        }
        let sockets: Vec<(u64, Socket)> = hub
            .sockets
            .lock()
            .unwrap()
            .iter()
            .map(|(c, s)| (*c, s.clone()))
            .collect();
        for (client, socket) in sockets {
            let seq = sent.direct.entry(client).or_insert(0);
            sent.first_direct
                .entry(socket.id().as_str().to_owned())
                .or_insert(*seq);
            let _ = socket.emit_args("direct", vec![Value::from(*seq)]);
            *seq += 1;
        }
        for (room, seq) in &mut sent.rooms {
            let _ = io
                .to("/", room)
                .emit_args("room", vec![Value::from(room.as_str()), Value::from(*seq)]);
            *seq += 1;
        }
    }
}

/// What one client saw.
#[derive(Default)]
struct Log {
    direct: Vec<u64>,
    room: Vec<u64>,
    /// Each CONNECT answer: sid and `recovered`.
    connects: Vec<(String, bool)>,
    /// Each disconnection's reason.
    reasons: Vec<&'static str>,
    connected: bool,
    /// Reconnection attempts that failed at the transport.
    refused: usize,
    /// Of which the attempts whose handshake got no answer in time.
    timed_out: usize,
    /// Anything unexpected (a refusal, an event of another room).
    odd: Vec<String>,
}

fn seq_of(arg: Option<&Value>) -> Option<u64> {
    arg.map(Value::to_json).and_then(|v| v.as_u64())
}

async fn run_client(mut socket: ClientSocket, room: String, log: Arc<Mutex<Log>>) {
    while let Some(event) = socket.next_event().await {
        // Poisoned only by a failed assertion of the test, which says more.
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            ClientEvent::Connect { sid, recovered } => {
                log.connects.push((sid, recovered));
                log.connected = true;
            }
            ClientEvent::Disconnect { reason } => {
                log.reasons.push(reason);
                log.connected = false;
            }
            ClientEvent::Event { name, args, .. } => match name.as_str() {
                "direct" => match seq_of(args.first()) {
                    Some(seq) => log.direct.push(seq),
                    None => log.odd.push(format!("direct {args:?}")),
                },
                "room" if args.first().and_then(Value::as_str) == Some(room.as_str()) => {
                    match seq_of(args.get(1)) {
                        Some(seq) => log.room.push(seq),
                        None => log.odd.push(format!("room {args:?}")),
                    }
                }
                _ => log.odd.push(format!("{name} {args:?}")),
            },
            // A reconnection attempt that failed at the transport: refused
            // by the proxy, or, under load, not answered in time.
            ClientEvent::ConnectError { data }
                if data
                    .get("message")
                    .and_then(Value::as_str)
                    .is_some_and(|m| {
                        [
                            "transport error",
                            "transport close",
                            "ping timeout",
                            "timeout",
                        ]
                        .contains(&m)
                    }) =>
            {
                log.refused += 1;
                if data.get("message").and_then(Value::as_str) == Some("timeout") {
                    log.timed_out += 1;
                }
            }
            other => log.odd.push(format!("{other:?}")),
        }
    }
}

struct Clients {
    managers: Vec<Manager>,
    logs: Vec<Arc<Mutex<Log>>>,
}

impl Clients {
    fn start(proxy: &Proxy, transports: ClientTransports) -> Self {
        let mut managers = Vec::new();
        let mut logs = Vec::new();
        for client in 0..CLIENTS {
            let mut config = ClientConfig::new(&format!("http://{}", proxy.addr));
            config.transports = transports;
            config.reconnection_delay = Duration::from_millis(100);
            config.reconnection_delay_max = Duration::from_millis(500);
            // Under load an attempt's handshake now and then gets no
            // answer at all (see docs/socketio-recovery.md, "Fault test");
            // give it up after 3 s rather than the default 20 s.
            config.timeout = Duration::from_secs(3);
            let manager = Manager::new(config);
            let auth = serde_json::json!({ "client": client });
            let socket = manager.socket("/", Some(Value::from(auth)));
            let log = Arc::new(Mutex::new(Log::default()));
            tokio::spawn(run_client(socket, room_of(client), log.clone()));
            managers.push(manager);
            logs.push(log);
        }
        Self { managers, logs }
    }

    /// Waits until `ok` holds for every client's log; panics with `what`
    /// and the clients it does not hold for after [`PHASE`].
    async fn wait_all(&self, what: &str, ok: impl Fn(usize, &Log) -> bool) {
        self.wait_some(what, self.logs.len(), ok).await;
    }

    /// Waits until `ok` holds for `n` clients' logs at least.
    async fn wait_some(&self, what: &str, n: usize, ok: impl Fn(usize, &Log) -> bool) {
        let deadline = Instant::now() + PHASE;
        loop {
            let behind: Vec<usize> = (0..self.logs.len())
                .filter(|&i| !ok(i, &self.logs[i].lock().unwrap()))
                .collect();
            if self.logs.len() - behind.len() >= n {
                return;
            }
            if Instant::now() >= deadline {
                let l = self.logs[behind[0]].lock().unwrap();
                panic!(
                    "{what}: not done in {PHASE:?} for clients {behind:?}; the first: connects {:?}, \
                     reasons {:?}, refused {}, odd {:?}, {} direct, {} room",
                    l.connects,
                    l.reasons,
                    l.refused,
                    l.odd,
                    l.direct.len(),
                    l.room.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `f` of each client's log, in client order.
    fn each<T>(&self, f: impl Fn(&Log) -> T) -> Vec<T> {
        self.logs.iter().map(|l| f(&l.lock().unwrap())).collect()
    }
}

async fn wait_server(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + PHASE;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not done in {PHASE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every socket of the hub is on WebSocket.
fn all_upgraded(hub: &Hub) -> bool {
    let sockets = hub.sockets.lock().unwrap();
    sockets.len() == CLIENTS as usize
        && sockets
            .values()
            .all(|s| s.transport() == Some(TransportName::WebSocket))
}

/// The gaps and repeats of one stream's received sequence, against the
/// `sent` events numbered from the first one received.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Tally {
    expected: u64,
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
}

fn tally(seen: &[u64], sent: u64) -> Tally {
    let first = seen.iter().copied().min().unwrap_or(sent);
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    let expected = sent - first;
    Tally {
        expected,
        lost: expected - unique.len() as u64,
        duplicated: (seen.len() - unique.len()) as u64,
        out_of_order: seen.windows(2).filter(|w| w[1] < w[0]).count() as u64,
    }
}

/// The runs missing from an ascending sequence, as (first, last).
fn gaps(seen: &[u64]) -> Vec<(u64, u64)> {
    seen.windows(2)
        .filter(|w| w[1] > w[0] + 1)
        .map(|w| (w[0] + 1, w[1] - 1))
        .collect()
}

/// One run: the clients, the three faults in turn, the tally.
async fn run(transports: ClientTransports, recovery: bool) {
    let mode = match transports {
        ClientTransports::WebSocket => "websocket",
        ClientTransports::Polling => "polling",
        ClientTransports::PollingThenWebSocket => "upgrade",
    };
    let (io, upstream, hub) = server(recovery).await;
    let proxy = Proxy::start(upstream).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let streamer = tokio::spawn(stream(io.clone(), hub.clone(), stopped));
    let clients = Clients::start(&proxy, transports);
    let started = Instant::now();
    clients
        .wait_all("first connection", |_, l| l.connected)
        .await;

    // All at once by each fault; on WebSocket, where each client has one
    // connection, then every other connection alone while the rest go on.
    let mut cuts = vec![
        (Fault::Fin, false),
        (Fault::Rst, false),
        (Fault::Blackhole, false),
    ];
    if transports == ClientTransports::WebSocket {
        cuts.extend([(Fault::Rst, true), (Fault::Blackhole, true)]);
    }
    for (fault, half) in cuts {
        let what = format!("{fault:?}{}", if half { " of half" } else { "" });
        // Flowing on every stream (so each client has an offset to come
        // back with), and upgraded when it is to be cut across an upgrade.
        let direct = clients.each(|l| l.direct.len());
        let room = clients.each(|l| l.room.len());
        clients
            .wait_all(&format!("{what}: events before"), |i, l| {
                l.connected && l.direct.len() >= direct[i] + 3 && l.room.len() >= room[i] + 3
            })
            .await;
        if transports == ClientTransports::PollingThenWebSocket {
            wait_server("upgrade", || all_upgraded(&hub)).await;
        }

        let connects = clients.each(|l| l.connects.len());
        let disconnects = clients.each(|l| l.reasons.len());
        hub.reasons.lock().unwrap().clear();
        let n = if half {
            wait_server("one connection per client", || {
                proxy.connections().len() == CLIENTS as usize
            })
            .await;
            let ids: Vec<u64> = proxy.connections().into_iter().step_by(2).collect();
            proxy.fault_some(&ids, fault)
        } else {
            proxy.fault(fault);
            CLIENTS as usize
        };
        clients
            .wait_some(&format!("{what}: clients notice"), n, |i, l| {
                l.reasons.len() > disconnects[i]
            })
            .await;
        // Away until the server has seen each of them go: a CONNECT with
        // the pid of a socket still connected is a fresh session.
        wait_server(&format!("{what}: the server notices"), || {
            hub.online.lock().unwrap().len() <= CLIENTS as usize - n
        })
        .await;
        proxy.reopen();
        // What noticed each cut: a blackhole only the ping timeouts, on
        // both sides, or it was not one.
        let server_saw: BTreeSet<String> = hub
            .reasons
            .lock()
            .unwrap()
            .iter()
            .map(|r| format!("{r:?}"))
            .collect();
        let clients_saw: BTreeSet<&str> = clients
            .logs
            .iter()
            .zip(&disconnects)
            .filter_map(|(l, &n)| l.lock().unwrap().reasons.get(n).copied())
            .collect();
        eprintln!(
            "{mode} {what} ({n} cut): the server saw {server_saw:?}, the clients {clients_saw:?}"
        );
        if fault == Fault::Blackhole {
            assert_eq!(server_saw, BTreeSet::from(["PingTimeout".to_owned()]));
            assert_eq!(clients_saw, BTreeSet::from(["ping timeout"]));
        }
        clients
            .wait_some(&format!("{what}: back"), n, |i, l| {
                l.connected && l.connects.len() > connects[i]
            })
            .await;
        clients
            .wait_all(&format!("{what}: all connected"), |_, l| l.connected)
            .await;
        if half {
            let cut = clients.each(|l| l.reasons.len());
            let cut = cut.iter().zip(&disconnects).filter(|(a, b)| a > b).count();
            assert!(
                (n..CLIENTS as usize).contains(&cut),
                "{what}: {cut} clients cut, want {n}"
            );
        }
    }

    // The last events are through: stop and wait for every stream's end.
    let direct = clients.each(|l| l.direct.len());
    clients
        .wait_all("events after the last cut", |i, l| {
            l.direct.len() >= direct[i] + 3
        })
        .await;
    stop.send_replace(true);
    let sent = tokio::time::timeout(PHASE, streamer)
        .await
        .expect("the streamer did not stop")
        .unwrap();
    clients
        .wait_all("the last events", |i, l| {
            let client = i as u64;
            l.direct.last().copied().map(|s| s + 1) == sent.direct.get(&client).copied()
                && l.room.last().copied().map(|s| s + 1)
                    == sent.rooms.get(&room_of(client)).copied()
        })
        .await;
    let elapsed = started.elapsed();
    for m in &clients.managers {
        m.close();
    }
    drop(proxy);

    let mut total = Tally::default();
    for (i, log) in clients.logs.iter().enumerate() {
        let log = log.lock().unwrap();
        let client = i as u64;
        assert!(log.odd.is_empty(), "client {i}: {:?}", log.odd);
        let direct = tally(&log.direct, sent.direct[&client]);
        let room = tally(&log.room, sent.rooms[&room_of(client)]);
        for t in [direct, room] {
            total.expected += t.expected;
            total.lost += t.lost;
            total.duplicated += t.duplicated;
            total.out_of_order += t.out_of_order;
        }
        // The streams start with the first connection: nothing sent to
        // the socket the client first connected as is missing.
        let (first, reconnects) = log.connects.split_first().unwrap();
        assert_eq!(
            log.direct.first(),
            sent.first_direct.get(&first.0),
            "client {i}: connects {:?}",
            log.connects
        );
        assert!(!first.1, "client {i}: recovered at its first connection");
        assert!(reconnects.len() >= 3, "client {i}: {:?}", log.connects);
        assert!(
            log.refused <= 100,
            "client {i}: {} refused attempts",
            log.refused
        );
        if recovery {
            assert_eq!(
                direct.lost + room.lost,
                0,
                "client {i}: {direct:?} {room:?}; direct gaps {:?}, room gaps {:?}; connects {:?}, \
                 reasons {:?}; sockets that connected again while the server still had them \
                 connected (client, old sid): {:?}",
                gaps(&log.direct),
                gaps(&log.room),
                log.connects,
                log.reasons,
                hub.overtaken.lock().unwrap()
            );
            for (sid, recovered) in reconnects {
                assert!(
                    *recovered && *sid == first.0,
                    "client {i}: came back as {sid} (was {}), recovered: {recovered}",
                    first.0
                );
            }
        } else {
            assert!(
                reconnects.iter().all(|(sid, r)| !r && *sid != first.0),
                "client {i}: recovered with recovery off: {:?}",
                log.connects
            );
        }
    }
    let percent = total.lost as f64 * 100.0 / total.expected as f64;
    let timed_out: usize = clients.each(|l| l.timed_out).iter().sum();
    eprintln!(
        "recovery {} ({mode}): {} of {} events lost ({percent:.1} %), {} duplicated, {} out of order; \
         {CLIENTS} clients cut by FIN, RST and a blackhole in {:.1} s; {timed_out} handshakes timed out",
        if recovery { "on" } else { "off" },
        total.lost,
        total.expected,
        total.duplicated,
        total.out_of_order,
        elapsed.as_secs_f64(),
    );
    assert_eq!((total.duplicated, total.out_of_order), (0, 0));
    if recovery {
        assert_eq!(total.lost, 0);
    } else {
        // The server streamed to every socket for a second or more while
        // it was away, and nothing keeps those events.
        assert!(total.lost >= CLIENTS * 3, "{total:?}");
    }
}

async fn both(transports: ClientTransports) {
    run(transports, true).await;
    run(transports, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_cut_over_websocket() {
    both(ClientTransports::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_cut_over_polling() {
    both(ClientTransports::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_cut_after_the_upgrade() {
    both(ClientTransports::PollingThenWebSocket).await;
}
