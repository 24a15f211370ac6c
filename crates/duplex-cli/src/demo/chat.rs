//! The chat of the demo: rooms, members, history. Application logic only;
//! the transports (WebSocket, long-polling, Server-Sent Events, Socket.IO,
//! STOMP) are the duplex crates', and each member is reached through a
//! bounded outbox that a task of its transport drains.
//!
//! Every chat message goes through the STOMP broker (`/topic/chat.<room>`):
//! the hub publishes what its members say, and delivers to them what its
//! subscription receives, so STOMP clients (stompjs over SockJS or
//! WebSocket, STOMP over TCP) and the page's own transports share one chat,
//! in one order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use duplex_stomp::{AckMode, ClientConfig, ClientEvent};
use duplex_tokio::stomp::{StompClient, StompServer};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::stats::{Stats, Transport};

/// The rooms that always exist (and that the hub listens to on the broker
/// from the start, so that STOMP clients reach them before anyone else
/// joins).
pub(crate) const DEFAULT_ROOMS: [&str; 3] = ["lobby", "rust", "random"];
/// Messages kept per room for members who join later.
/// Why the hub refused a member's `join` or `say`; its text is what the
/// member is told (the `error` document, the ack's `error` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A name empty or over [`MAX_NAME`] characters.
    BadName,
    /// A room name that [`valid_room`] refuses.
    BadRoom,
    /// [`MAX_ROOMS`] rooms exist already.
    TooManyRooms,
    /// The member is not (or no longer) registered.
    NotConnected,
    /// A blank message.
    EmptyMessage,
    /// A message over [`MAX_TEXT`] characters.
    MessageTooLong,
    /// `say` before `join`.
    NotJoined,
    /// The server is shutting down and registers no new member.
    ShuttingDown,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadName => write!(f, "a name has 1 to {MAX_NAME} characters"),
            Self::BadRoom => write!(
                f,
                "a room name has 1 to {MAX_NAME} letters, digits, '-' or '_'"
            ),
            Self::TooManyRooms => f.write_str("too many rooms"),
            Self::NotConnected => f.write_str("not connected"),
            Self::EmptyMessage => f.write_str("empty message"),
            Self::MessageTooLong => write!(f, "a message has at most {MAX_TEXT} characters"),
            Self::NotJoined => f.write_str("join a room first"),
            Self::ShuttingDown => f.write_str("server shutting down"),
        }
    }
}

impl std::error::Error for Refusal {}

const HISTORY: usize = 50;
/// Messages waiting for one member; past it the member reads too slowly
/// and is dropped.
pub(crate) const OUTBOX: usize = 256;
/// Longest chat message, in characters.
const MAX_TEXT: usize = 2000;
/// Longest user or room name, in characters.
const MAX_NAME: usize = 32;
/// Most rooms at once; joining another one is refused.
const MAX_ROOMS: usize = 256;
/// Publishes waiting for the broker bridge.
const BRIDGE_QUEUE: usize = 1024;
/// The broker destination prefix of a room.
pub(crate) const TOPIC_PREFIX: &str = "/topic/chat.";
/// The receipt the bridge asks for when it subscribes to a room, followed
/// by the room's name.
const SUBSCRIBED_RECEIPT: &str = "chat-subscribed:";

/// A member's id in the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct MemberId(u64);

/// One message for a member: its kind (`message`, `presence`, `joined`,
/// `welcome`, `pong`, `error`, `bye`), the document, and the document as
/// JSON text (what the page's transports send).
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub(crate) kind: &'static str,
    pub(crate) value: Arc<Value>,
    pub(crate) text: Arc<str>,
}

impl Outgoing {
    fn new(kind: &'static str, mut value: Value) -> Outgoing {
        if let Value::Object(map) = &mut value {
            map.insert("type".to_owned(), Value::from(kind));
        }
        let text: Arc<str> = value.to_string().into();
        Outgoing {
            kind,
            value: Arc::new(value),
            text,
        }
    }
}

struct Member {
    name: Option<String>,
    room: Option<String>,
    transport: Transport,
    outbox: mpsc::Sender<Outgoing>,
}

#[derive(Default)]
struct Room {
    history: VecDeque<Arc<Value>>,
    /// The bridge's subscription to the room's topic is confirmed (its
    /// `RECEIPT` came back): until then a message published to the broker
    /// would reach no subscriber of the hub's, so members get it locally.
    subscribed: bool,
}

#[derive(Default)]
struct State {
    next_member: u64,
    next_message: u64,
    members: BTreeMap<MemberId, Member>,
    rooms: BTreeMap<String, Room>,
    closing: bool,
}

/// The chat hub, shared by every endpoint.
pub(crate) struct Hub {
    state: Mutex<State>,
    stats: Arc<Stats>,
    publish: mpsc::Sender<(String, String)>,
    subscribe: mpsc::UnboundedSender<String>,
    bridged: AtomicBool,
    /// The bridge's STOMP connections the broker serves now: counted from
    /// before the broker sees them until it let them go, so that `/stats`
    /// never takes them for clients (it subtracts them, saturating).
    bridge_open: AtomicUsize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.chars().count() <= MAX_NAME
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Hub {
    /// A hub whose messages travel through `stomp`'s broker, over two
    /// in-process STOMP connections (one publishes, one subscribes).
    pub(crate) fn start(stomp: &StompServer, stats: Arc<Stats>) -> Arc<Hub> {
        let (publish, publish_rx) = mpsc::channel(BRIDGE_QUEUE);
        let (subscribe, subscribe_rx) = mpsc::unbounded_channel();
        let mut state = State::default();
        for room in DEFAULT_ROOMS {
            state.rooms.insert(room.to_owned(), Room::default());
            let _ = subscribe.send(room.to_owned());
        }
        let hub = Arc::new(Hub {
            state: Mutex::new(state),
            stats,
            publish,
            subscribe,
            bridged: AtomicBool::new(false),
            bridge_open: AtomicUsize::new(0),
        });
        tokio::spawn(bridge(
            Arc::downgrade(&hub),
            stomp.clone(),
            publish_rx,
            subscribe_rx,
        ));
        hub
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation completes before anything can panic; the data
        // stays consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The hub's own STOMP connections (not counted as clients).
    pub(crate) fn bridge_connections(&self) -> usize {
        self.bridge_open.load(Ordering::Relaxed)
    }

    /// Whether the server is shutting down.
    pub(crate) fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// A new member on `transport`; `None` once the server is shutting
    /// down. The member gets a `welcome` with the rooms.
    pub(crate) fn register(
        &self,
        transport: Transport,
    ) -> Option<(MemberId, mpsc::Receiver<Outgoing>)> {
        let (tx, rx) = mpsc::channel(OUTBOX);
        let mut state = self.lock();
        if state.closing {
            return None;
        }
        state.next_member += 1;
        let id = MemberId(state.next_member);
        let welcome = Outgoing::new(
            "welcome",
            json!({
                "member": id.0,
                "transport": transport.as_str(),
                "rooms": state.rooms.keys().collect::<Vec<_>>(),
            }),
        );
        let _ = tx.try_send(welcome);
        state.members.insert(
            id,
            Member {
                name: None,
                room: None,
                transport,
                outbox: tx,
            },
        );
        Some((id, rx))
    }

    /// The member left (its transport closed).
    pub(crate) fn unregister(&self, id: MemberId) {
        let mut state = self.lock();
        if let Some(member) = state.members.remove(&id) {
            if let Some(room) = member.room {
                Self::presence(&mut state, &room);
            }
        }
    }

    /// One JSON message from a page transport: `join`, `say` or `ping`.
    pub(crate) fn handle_text(&self, id: MemberId, text: &str) {
        self.stats.received(text.len());
        let reply = match serde_json::from_str::<Value>(text) {
            Ok(msg) => match msg.get("type").and_then(Value::as_str) {
                Some("join") => {
                    let room = msg.get("room").and_then(Value::as_str).unwrap_or("");
                    let name = msg.get("name").and_then(Value::as_str).unwrap_or("");
                    self.join(id, room, name).err().map(|r| r.to_string())
                }
                Some("say") => {
                    let text = msg.get("text").and_then(Value::as_str).unwrap_or("");
                    self.say(id, text).err().map(|r| r.to_string())
                }
                Some("ping") => {
                    let pong = Outgoing::new("pong", json!({ "id": msg.get("id") }));
                    self.send_to(id, pong);
                    None
                }
                _ => Some("unknown message type".to_owned()),
            },
            Err(_) => Some("not JSON".to_owned()),
        };
        if let Some(message) = reply {
            self.send_to(id, Outgoing::new("error", json!({ "message": message })));
        }
    }

    fn send_to(&self, id: MemberId, out: Outgoing) {
        let mut state = self.lock();
        let full = state
            .members
            .get(&id)
            .is_some_and(|m| m.outbox.try_send(out).is_err());
        if full {
            Self::drop_member(&mut state, id);
        }
    }

    /// Puts the member in `room` under `name` (leaving its previous room);
    /// the member gets `joined` (history and who is there), the room a
    /// `presence`. Returns the `joined` document.
    pub(crate) fn join(&self, id: MemberId, room: &str, name: &str) -> Result<Value, Refusal> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(Refusal::BadName);
        }
        if !valid_room(room) {
            return Err(Refusal::BadRoom);
        }
        let mut state = self.lock();
        if !state.rooms.contains_key(room) {
            if state.rooms.len() >= MAX_ROOMS {
                return Err(Refusal::TooManyRooms);
            }
            state.rooms.insert(room.to_owned(), Room::default());
            let _ = self.subscribe.send(room.to_owned());
        }
        let Some(member) = state.members.get_mut(&id) else {
            return Err(Refusal::NotConnected);
        };
        let previous = member.room.replace(room.to_owned());
        member.name = Some(name.to_owned());
        let history: Vec<Value> = state
            .rooms
            .get(room)
            .map(|r| r.history.iter().map(|m| (**m).clone()).collect())
            .unwrap_or_default();
        let joined = Outgoing::new(
            "joined",
            json!({
                "room": room,
                "name": name,
                "history": history,
                "users": Self::users(&state, room),
            }),
        );
        let value = (*joined.value).clone();
        if let Some(member) = state.members.get(&id) {
            if member.outbox.try_send(joined).is_err() {
                Self::drop_member(&mut state, id);
            }
        }
        if let Some(previous) = previous.filter(|p| p != room) {
            Self::presence(&mut state, &previous);
        }
        Self::presence(&mut state, room);
        Ok(value)
    }

    /// The member says `text` in its room.
    pub(crate) fn say(&self, id: MemberId, text: &str) -> Result<(), Refusal> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Refusal::EmptyMessage);
        }
        if text.chars().count() > MAX_TEXT {
            return Err(Refusal::MessageTooLong);
        }
        let (room, body) = {
            let state = self.lock();
            let Some(member) = state.members.get(&id) else {
                return Err(Refusal::NotConnected);
            };
            let (Some(room), Some(name)) = (&member.room, &member.name) else {
                return Err(Refusal::NotJoined);
            };
            let body = json!({
                "from": name,
                "text": text,
                "via": member.transport.as_str(),
            });
            (room.clone(), body.to_string())
        };
        if self.bridged.load(Ordering::Relaxed) && self.room_subscribed(&room) {
            match self.publish.try_send((room.clone(), body.clone())) {
                Ok(()) => return Ok(()),
                Err(_) => tracing::debug!("chat: broker bridge busy, delivering locally"),
            }
        }
        self.deliver(&room, body.as_bytes());
        Ok(())
    }

    fn room_subscribed(&self, room: &str) -> bool {
        self.lock().rooms.get(room).is_some_and(|r| r.subscribed)
    }

    /// The broker confirmed the bridge's subscription to `room`'s topic:
    /// what members say there goes through the broker from now on.
    fn on_subscribed(&self, room: &str) {
        if let Some(r) = self.lock().rooms.get_mut(room) {
            r.subscribed = true;
        }
    }

    /// A message the broker delivered on `/topic/chat.<room>`: JSON
    /// `{"from","text","via"}` from the hub or a STOMP client, or any text
    /// (from a STOMP client that sends plain bodies).
    pub(crate) fn on_broker_message(&self, destination: &str, body: &[u8]) {
        if let Some(room) = destination.strip_prefix(TOPIC_PREFIX) {
            self.deliver(room, body);
        }
    }

    fn deliver(&self, room: &str, body: &[u8]) {
        let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(body).ok();
        let field = |name: &str| -> Option<String> {
            parsed
                .as_ref()
                .and_then(|m| m.get(name))
                .and_then(Value::as_str)
                .map(|s| s.chars().take(MAX_TEXT).collect())
        };
        let text = match field("text") {
            Some(t) => t,
            None if parsed.is_some() => return,
            None => String::from_utf8_lossy(body)
                .chars()
                .take(MAX_TEXT)
                .collect(),
        };
        let from: String = field("from")
            .unwrap_or_else(|| "anonymous".to_owned())
            .chars()
            .take(MAX_NAME)
            .collect();
        let via = field("via").unwrap_or_else(|| "stomp".to_owned());
        let mut state = self.lock();
        state.next_message += 1;
        let message = Outgoing::new(
            "message",
            json!({
                "id": state.next_message,
                "room": room,
                "from": from,
                "text": text,
                "via": via,
                "ts": now_ms(),
            }),
        );
        if let Some(r) = state.rooms.get_mut(room) {
            if r.history.len() == HISTORY {
                r.history.pop_front();
            }
            r.history.push_back(message.value.clone());
        }
        Self::broadcast(&mut state, room, &message);
    }

    /// Sends `out` to every member in `room`, dropping those whose outbox
    /// is full.
    fn broadcast(state: &mut State, room: &str, out: &Outgoing) {
        let mut slow = Vec::new();
        for (id, member) in &state.members {
            if member.room.as_deref() == Some(room) && member.outbox.try_send(out.clone()).is_err()
            {
                slow.push(*id);
            }
        }
        for id in slow {
            Self::drop_member(state, id);
        }
    }

    fn drop_member(state: &mut State, id: MemberId) {
        tracing::debug!(member = id.0, "chat member too slow: dropped");
        // Dropping the outbox's sender ends the member's transport task.
        if let Some(member) = state.members.remove(&id) {
            if let Some(room) = member.room {
                Self::presence(state, &room);
            }
        }
    }

    fn users(state: &State, room: &str) -> Vec<Value> {
        state
            .members
            .values()
            .filter(|m| m.room.as_deref() == Some(room))
            .filter_map(|m| {
                m.name
                    .as_ref()
                    .map(|n| json!({ "name": n, "via": m.transport.as_str() }))
            })
            .collect()
    }

    fn presence(state: &mut State, room: &str) {
        let out = Outgoing::new(
            "presence",
            json!({ "room": room, "users": Self::users(state, room) }),
        );
        Self::broadcast(state, room, &out);
    }

    /// Members per room, for `/stats`.
    pub(crate) fn rooms(&self) -> Value {
        let state = self.lock();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for m in state.members.values() {
            if let Some(room) = &m.room {
                *counts.entry(room.as_str()).or_default() += 1;
            }
        }
        Value::Object(
            state
                .rooms
                .keys()
                .map(|r| {
                    (
                        r.clone(),
                        json!(counts.get(r.as_str()).copied().unwrap_or(0)),
                    )
                })
                .collect(),
        )
    }

    /// Tells every member the server is going away (`bye`), then lets go
    /// of their outboxes: each transport task writes what is queued and
    /// closes its connection properly. New members are refused.
    pub(crate) fn shutdown(&self) {
        let mut state = self.lock();
        state.closing = true;
        let bye = Outgoing::new("bye", json!({ "reason": "server shutting down" }));
        for member in state.members.values() {
            // A full outbox already holds more than the bye would say.
            let _ = member.outbox.try_send(bye.clone());
        }
        state.members.clear();
    }
}

/// Connects the hub to the broker: one in-process STOMP connection
/// publishes what members say, another subscribes to every room and hands
/// what arrives to the hub.
async fn bridge(
    hub: std::sync::Weak<Hub>,
    stomp: StompServer,
    mut publish: mpsc::Receiver<(String, String)>,
    mut subscribe: mpsc::UnboundedReceiver<String>,
) {
    let connect = |stomp: &StompServer| {
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let server = stomp.clone();
        let hub = hub.clone();
        if let Some(hub) = hub.upgrade() {
            hub.bridge_open.fetch_add(1, Ordering::Relaxed);
        }
        tokio::spawn(async move {
            server.serve_stream(server_end).await;
            if let Some(hub) = hub.upgrade() {
                hub.bridge_open.fetch_sub(1, Ordering::Relaxed);
            }
        });
        StompClient::over_stream(client_end, ClientConfig::new("/"))
    };
    let (publisher, mut subscriber) = match tokio::try_join!(connect(&stomp), connect(&stomp)) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!("chat: no broker ({e}); STOMP clients will not see the chat");
            return;
        }
    };
    if let Some(hub) = hub.upgrade() {
        hub.bridged.store(true, Ordering::Relaxed);
    }
    let publishing = async move {
        while let Some((room, body)) = publish.recv().await {
            let destination = format!("{TOPIC_PREFIX}{room}");
            if let Err(e) = publisher
                .send(&destination, &[("content-type", "application/json")], body)
                .await
            {
                tracing::debug!("chat: publish failed: {e}");
                break;
            }
        }
    };
    let hub_for_events = hub.clone();
    let subscribing = async move {
        loop {
            tokio::select! {
                event = subscriber.next_event() => match event {
                    Some(ClientEvent::Message(m)) => {
                        let Some(hub) = hub_for_events.upgrade() else { break };
                        hub.on_broker_message(m.destination().unwrap_or(""), m.body());
                    }
                    Some(ClientEvent::Receipt { receipt_id }) => {
                        let Some(hub) = hub_for_events.upgrade() else { break };
                        if let Some(room) = receipt_id.strip_prefix(SUBSCRIBED_RECEIPT) {
                            hub.on_subscribed(room);
                        }
                    }
                    Some(ClientEvent::Error(frame)) => {
                        tracing::debug!("chat: broker error: {:?}", frame.header("message"));
                        break;
                    }
                    Some(_) => {}
                    None => break,
                },
                room = subscribe.recv() => match room {
                    Some(room) => {
                        let destination = format!("{TOPIC_PREFIX}{room}");
                        // Published messages reach the hub only once the
                        // broker has the subscription: the receipt says so.
                        let receipt = format!("{SUBSCRIBED_RECEIPT}{room}");
                        let headers = [("receipt", receipt.as_str())];
                        if let Err(e) = subscriber
                            .subscribe_with(&destination, AckMode::Auto, &headers)
                            .await
                        {
                            tracing::debug!("chat: subscribe failed: {e}");
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
    };
    tokio::select! {
        () = publishing => {}
        () = subscribing => {}
    }
    // Without the broker the hub delivers what members say by itself.
    if let Some(hub) = hub.upgrade() {
        hub.bridged.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_hub() -> Arc<Hub> {
        // No bridge task: say() delivers locally.
        let (publish, _) = mpsc::channel(1);
        let (subscribe, _) = mpsc::unbounded_channel();
        Arc::new(Hub {
            state: Mutex::new(State::default()),
            stats: Arc::new(Stats::new()),
            publish,
            subscribe,
            bridged: AtomicBool::new(false),
            bridge_open: AtomicUsize::new(0),
        })
    }

    fn drain(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    #[test]
    fn members_in_a_room_hear_each_other_and_late_comers_get_history() {
        let hub = local_hub();
        let (a, mut rx_a) = hub.register(Transport::WebSocket).unwrap();
        let (b, mut rx_b) = hub.register(Transport::Sse).unwrap();
        hub.handle_text(a, r#"{"type":"join","room":"lobby","name":"alice"}"#);
        hub.handle_text(b, r#"{"type":"join","room":"other","name":"bob"}"#);
        hub.handle_text(a, r#"{"type":"say","text":"hello"}"#);
        let kinds: Vec<_> = drain(&mut rx_a).iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["welcome", "joined", "presence", "message"]);
        // bob is in another room: nothing of alice's.
        let kinds: Vec<_> = drain(&mut rx_b).iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["welcome", "joined", "presence"]);

        hub.handle_text(b, r#"{"type":"join","room":"lobby","name":"bob"}"#);
        let got = drain(&mut rx_b);
        let joined = got.iter().find(|m| m.kind == "joined").unwrap();
        assert_eq!(joined.value["history"][0]["text"], "hello");
        assert_eq!(joined.value["history"][0]["from"], "alice");
        assert_eq!(joined.value["history"][0]["via"], "websocket");
        assert_eq!(joined.value["users"].as_array().unwrap().len(), 2);
        // alice sees bob arrive.
        let presence = drain(&mut rx_a);
        assert_eq!(presence.last().unwrap().value["users"][1]["name"], "bob");
    }

    #[test]
    fn a_bridged_room_goes_through_the_broker_only_once_its_subscription_is_confirmed() {
        let (publish, mut published) = mpsc::channel(8);
        let (subscribe, mut subscriptions) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub {
            state: Mutex::new(State::default()),
            stats: Arc::new(Stats::new()),
            publish,
            subscribe,
            bridged: AtomicBool::new(true),
            bridge_open: AtomicUsize::new(2),
        });
        let (a, mut rx) = hub.register(Transport::Sse).unwrap();
        hub.handle_text(a, r#"{"type":"join","room":"fresh","name":"alice"}"#);
        assert_eq!(subscriptions.try_recv().ok().as_deref(), Some("fresh"));
        drain(&mut rx);
        // Not confirmed yet: a publish would reach no subscriber of the
        // hub's, so the member hears it at once, and nothing is published.
        hub.handle_text(a, r#"{"type":"say","text":"early"}"#);
        let got = drain(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value["text"], "early");
        assert!(published.try_recv().is_err());
        // Confirmed: it goes to the broker, which delivers it back.
        hub.on_subscribed("fresh");
        hub.handle_text(a, r#"{"type":"say","text":"late"}"#);
        assert!(drain(&mut rx).is_empty());
        let (room, body) = published.try_recv().unwrap();
        assert_eq!(room, "fresh");
        assert!(body.contains("late"));
    }

    #[test]
    fn bad_input_gets_an_error_and_changes_nothing() {
        let hub = local_hub();
        let (a, mut rx) = hub.register(Transport::Polling).unwrap();
        drain(&mut rx);
        for bad in [
            "not json",
            r#"{"type":"dance"}"#,
            r#"{"type":"say","text":"before joining"}"#,
            r#"{"type":"join","room":"no spaces","name":"x"}"#,
            r#"{"type":"join","room":"lobby","name":"   "}"#,
        ] {
            hub.handle_text(a, bad);
            let got = drain(&mut rx);
            assert_eq!(got.len(), 1, "{bad}");
            assert_eq!(got[0].kind, "error", "{bad}");
        }
        let long = "x".repeat(MAX_TEXT + 1);
        hub.handle_text(a, r#"{"type":"join","room":"lobby","name":"a"}"#);
        drain(&mut rx);
        assert!(hub.say(a, &long).is_err());
        assert!(hub.lock().rooms["lobby"].history.is_empty());
    }

    #[test]
    fn ping_is_answered_with_its_id() {
        let hub = local_hub();
        let (a, mut rx) = hub.register(Transport::WebSocket).unwrap();
        drain(&mut rx);
        hub.handle_text(a, r#"{"type":"ping","id":42}"#);
        let got = drain(&mut rx);
        assert_eq!(got[0].kind, "pong");
        assert_eq!(&*got[0].text, r#"{"id":42,"type":"pong"}"#);
    }

    #[test]
    fn history_is_bounded() {
        let hub = local_hub();
        let (a, _rx) = hub.register(Transport::WebSocket).unwrap();
        hub.join(a, "lobby", "a").unwrap();
        for i in 0..(HISTORY + 10) {
            hub.on_broker_message("/topic/chat.lobby", format!("m{i}").as_bytes());
        }
        let state = hub.lock();
        let history = &state.rooms["lobby"].history;
        assert_eq!(history.len(), HISTORY);
        assert_eq!(history[0]["text"], "m10");
        assert_eq!(history[0]["from"], "anonymous");
        assert_eq!(history[0]["via"], "stomp");
    }

    #[test]
    fn a_member_that_does_not_read_is_dropped_not_buffered() {
        let hub = local_hub();
        let (slow, _rx_slow) = hub.register(Transport::Sse).unwrap();
        let (fast, mut rx_fast) = hub.register(Transport::WebSocket).unwrap();
        hub.join(slow, "lobby", "slow").unwrap();
        hub.join(fast, "lobby", "fast").unwrap();
        for i in 0..(OUTBOX + 5) {
            hub.on_broker_message("/topic/chat.lobby", format!("m{i}").as_bytes());
            drain(&mut rx_fast);
        }
        assert!(!hub.lock().members.contains_key(&slow));
        assert!(hub.lock().members.contains_key(&fast));
    }

    #[test]
    fn shutdown_says_bye_then_closes_every_outbox_and_refuses_newcomers() {
        let hub = local_hub();
        let (_a, mut rx) = hub.register(Transport::WebSocket).unwrap();
        hub.shutdown();
        let mut kinds = Vec::new();
        while let Ok(m) = rx.try_recv() {
            kinds.push(m.kind);
        }
        assert_eq!(kinds, ["welcome", "bye"]);
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        assert!(hub.register(Transport::WebSocket).is_none());
    }
}
