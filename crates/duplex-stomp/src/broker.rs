//! A sans-IO in-memory broker: frames in from connection ids, frames out to
//! connection ids. All routing, acknowledgement and transaction state lives
//! in this module.
//!
//! # Semantics
//!
//! * Destinations starting with `/topic/` fan out: every subscription of
//!   the destination gets its own copy. Any other destination (`/queue/...`
//!   and everything else) is a queue: each message goes to one subscription,
//!   round robin, and waits in the queue while no subscription can take it.
//! * Every message gets a `message-id` (`m-<n>`, unique in the broker).
//!   Deliveries to `client` and `client-individual` subscriptions carry an
//!   `ack` header (`d-<n>`, unique per delivery) and stay *unacknowledged*
//!   until an `ACK` or `NACK` names them: in 1.2 by `id` (the `ack` value),
//!   in 1.1 by `message-id` and `subscription`, in 1.0 by `message-id`.
//!   A `client` subscription's `ACK`/`NACK` covers the named delivery and
//!   every earlier unacknowledged one; `client-individual` only the named
//!   one. `auto` deliveries are consumed when sent.
//! * A `NACK`ed queue message, and every unacknowledged queue message of a
//!   subscription that ends (`UNSUBSCRIBE`, `DISCONNECT`, lost connection,
//!   `ERROR`), goes back to the front of its queue, in its original order,
//!   with a `redelivered:true` header on its next delivery. Topic messages
//!   are not redelivered: a `NACK`ed or abandoned topic copy is dropped.
//!   An `ACK` naming no unacknowledged delivery (already covered by a
//!   cumulative `ACK`, say) is ignored.
//! * Frames carrying a `transaction` header (`SEND`, `ACK`, `NACK`) are held
//!   until `COMMIT` applies them in order, or `ABORT` (or the end of the
//!   connection) drops them.
//! * A frame with a `receipt` header is answered with `RECEIPT` once it has
//!   been processed (for a `SEND`, after the message was routed).
//! * Any fault (a missing header, an unknown subscription or transaction, a
//!   limit) is answered with an `ERROR` frame (`message`, and `receipt-id`
//!   when the frame asked for a receipt); the broker then forgets the
//!   connection as if it had been lost, and the caller closes it.
//!
//! # Bounds and the policy when full
//!
//! * Each subscription has at most [`BrokerConfig::max_unacked`]
//!   unacknowledged deliveries; past that it receives nothing more until it
//!   acknowledges (this is the prefetch window).
//! * A queue holds at most [`BrokerConfig::max_queue_depth`] waiting
//!   messages. A `SEND` (or a `COMMIT` whose sends) would overflow it is
//!   refused with an `ERROR` to the sender: queue messages are never dropped
//!   silently.
//! * A topic subscription that is at its unacknowledged limit keeps a
//!   backlog of at most [`BrokerConfig::max_topic_backlog`] messages; when
//!   that is full, new messages for that subscription are dropped (counted
//!   by [`Broker::dropped_topic_messages`]), so one slow consumer never
//!   blocks a topic's publishers.
//! * Subscriptions and open transactions per connection, frames per
//!   transaction and the number of destinations are capped too; exceeding a
//!   cap is an `ERROR`.
//! * Output frames wait in [`Broker::poll_transmit`] until taken; one input
//!   produces at most a bounded number of them, so a caller that drains the
//!   output after every call keeps it small.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::ack::AckMode;
use crate::error::Error;
use crate::frame::{Command, Frame, Header};
use crate::version::Version;

/// Identifies one connection to the broker; the caller picks the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Limits of a [`Broker`]. See the module documentation for what happens
/// at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Unacknowledged deliveries per subscription. Default 1024.
    pub max_unacked: usize,
    /// Waiting messages per queue. Default 10 000.
    pub max_queue_depth: usize,
    /// Waiting messages per topic subscription. Default 1024.
    pub max_topic_backlog: usize,
    /// Subscriptions per connection. Default 256.
    pub max_subscriptions: usize,
    /// Open transactions per connection. Default 16.
    pub max_transactions: usize,
    /// Frames held per transaction. Default 1024.
    pub max_transaction_frames: usize,
    /// Destinations (queues and topics) known at once. Default 10 000.
    pub max_destinations: usize,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            max_unacked: 1024,
            max_queue_depth: 10_000,
            max_topic_backlog: 1024,
            max_subscriptions: 256,
            max_transactions: 16,
            max_transaction_frames: 1024,
            max_destinations: 10_000,
        }
    }
}

/// A frame for the caller to send on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerOutput {
    /// Where to send it.
    pub connection: ConnectionId,
    /// What to send. After an `ERROR` the broker has forgotten the
    /// connection: close it once the frame is written.
    pub frame: Frame,
}

/// A message as it sits in a queue: what the sender sent, minus the
/// headers that only concerned the `SEND` itself.
#[derive(Debug)]
struct StoredMessage {
    message_id: Bytes,
    destination: Bytes,
    headers: Vec<Header>,
    body: Bytes,
}

#[derive(Debug, Clone)]
struct Queued {
    message: Arc<StoredMessage>,
    redelivered: bool,
}

#[derive(Debug)]
struct Delivery {
    ack_id: u64,
    queued: Queued,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Queue,
    Topic,
}

impl Kind {
    fn of(destination: &[u8]) -> Kind {
        if destination.starts_with(b"/topic/") {
            Kind::Topic
        } else {
            Kind::Queue
        }
    }
}

#[derive(Debug)]
struct Subscription {
    destination: Bytes,
    kind: Kind,
    ack: AckMode,
    unacked: VecDeque<Delivery>,
    /// Topic messages waiting for room in `unacked`.
    backlog: VecDeque<Queued>,
}

#[derive(Debug)]
struct Connection {
    version: Version,
    subscriptions: HashMap<Bytes, Subscription>,
    transactions: HashMap<Bytes, Vec<Frame>>,
    /// Which subscription holds each unacknowledged delivery.
    ack_index: HashMap<u64, Bytes>,
}

type SubKey = (ConnectionId, Bytes);

#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Queued>,
    subscribers: Vec<SubKey>,
    cursor: usize,
}

/// The broker. See the module documentation.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    connections: HashMap<ConnectionId, Connection>,
    queues: HashMap<Bytes, Queue>,
    topics: HashMap<Bytes, Vec<SubKey>>,
    next_message: u64,
    next_delivery: u64,
    dropped_topic_messages: u64,
    output: VecDeque<BrokerOutput>,
}

fn header(name: &'static str, value: Bytes) -> Header {
    Header::from_utf8_bytes(Bytes::from_static(name.as_bytes()), value)
}

fn parse_id(prefix: &str, text: &str) -> Option<u64> {
    text.strip_prefix(prefix)?.parse().ok()
}

impl Default for Broker {
    fn default() -> Broker {
        Broker::new(BrokerConfig::default())
    }
}

impl Broker {
    /// An empty broker.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            config,
            connections: HashMap::new(),
            queues: HashMap::new(),
            topics: HashMap::new(),
            next_message: 0,
            next_delivery: 0,
            dropped_topic_messages: 0,
            output: VecDeque::new(),
        }
    }

    /// Registers a connection whose session negotiated `version` (after the
    /// session's `CONNECTED`). Registering a known id first ends its old
    /// incarnation.
    pub fn connect(&mut self, connection: ConnectionId, version: Version) {
        self.disconnect(connection);
        self.connections.insert(
            connection,
            Connection {
                version,
                subscriptions: HashMap::new(),
                transactions: HashMap::new(),
                ack_index: HashMap::new(),
            },
        );
    }

    /// Forgets a connection that went away: its transactions are aborted,
    /// its subscriptions end and their unacknowledged queue messages are
    /// redelivered to other subscriptions.
    pub fn disconnect(&mut self, connection: ConnectionId) {
        let Some(conn) = self.connections.remove(&connection) else {
            return;
        };
        for (id, sub) in conn.subscriptions {
            self.detach(connection, id, sub);
        }
    }

    /// Whether `connection` is registered.
    pub fn is_connected(&self, connection: ConnectionId) -> bool {
        self.connections.contains_key(&connection)
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<BrokerOutput> {
        self.output.pop_front()
    }

    /// Messages waiting in queue `destination`.
    pub fn queue_depth(&self, destination: &str) -> usize {
        self.queues
            .get(destination.as_bytes())
            .map_or(0, |q| q.waiting.len())
    }

    /// Unacknowledged deliveries held by `connection`.
    pub fn unacked(&self, connection: ConnectionId) -> usize {
        self.connections
            .get(&connection)
            .map_or(0, |c| c.ack_index.len())
    }

    /// Topic messages dropped because a subscription's backlog was full.
    pub fn dropped_topic_messages(&self) -> u64 {
        self.dropped_topic_messages
    }

    /// Processes one frame from `connection` (a frame a
    /// [`crate::ServerSession`] handed out as [`crate::ServerEvent::Frame`]).
    /// Frames from unknown connections are ignored.
    pub fn handle_frame(&mut self, connection: ConnectionId, frame: Frame) {
        if !self.connections.contains_key(&connection) {
            return;
        }
        let receipt = frame
            .header_entry("receipt")
            .map(|h| h.value_bytes().clone());
        let command = frame.command();
        let result = match command {
            Command::Send | Command::Ack | Command::Nack => match frame.header_entry("transaction")
            {
                Some(tx) => {
                    let tx = tx.value_bytes().clone();
                    self.hold_in_transaction(connection, tx, frame)
                }
                None => self.apply(connection, &frame),
            },
            Command::Subscribe => self.subscribe(connection, &frame),
            Command::Unsubscribe => self.unsubscribe(connection, &frame),
            Command::Begin => self.begin(connection, &frame),
            Command::Commit => self.commit(connection, &frame),
            Command::Abort => self.abort(connection, &frame),
            Command::Disconnect => Ok(()),
            _ => Err(Error::UnexpectedFrame { command }),
        };
        match result {
            Ok(()) => {
                if let Some(r) = receipt {
                    let frame = Frame::from_parts(
                        Command::Receipt,
                        vec![header("receipt-id", r)],
                        Bytes::new(),
                    );
                    self.output.push_back(BrokerOutput { connection, frame });
                }
                if command == Command::Disconnect {
                    self.disconnect(connection);
                }
            }
            Err(e) => {
                let mut headers = vec![Header::new("message", e.error_message())];
                if let Some(r) = receipt {
                    headers.push(header("receipt-id", r));
                }
                headers.push(Header::from_static("content-type", "text/plain"));
                let frame = Frame::from_parts(Command::Error, headers, Bytes::from(e.to_string()));
                self.output.push_back(BrokerOutput { connection, frame });
                self.disconnect(connection);
            }
        }
    }

    /// `SEND`, `ACK` or `NACK` outside a transaction (or at `COMMIT`).
    fn apply(&mut self, connection: ConnectionId, frame: &Frame) -> Result<(), Error> {
        match frame.command() {
            Command::Send => self.send(frame),
            Command::Ack => self.acknowledge(connection, frame, false),
            Command::Nack => self.acknowledge(connection, frame, true),
            command => Err(Error::UnexpectedFrame { command }),
        }
    }

    fn hold_in_transaction(
        &mut self,
        connection: ConnectionId,
        tx: Bytes,
        frame: Frame,
    ) -> Result<(), Error> {
        if frame.command() == Command::Send {
            require(&frame, "destination")?;
        }
        let limit = self.config.max_transaction_frames;
        let conn = self.connections.get_mut(&connection).ok_or(Error::Closed)?;
        let held = conn
            .transactions
            .get_mut(&tx)
            .ok_or(Error::UnknownTransaction)?;
        if held.len() >= limit {
            return Err(Error::LimitReached {
                what: "frames per transaction",
            });
        }
        held.push(frame);
        Ok(())
    }

    fn begin(&mut self, connection: ConnectionId, frame: &Frame) -> Result<(), Error> {
        let tx = require(frame, "transaction")?;
        let limit = self.config.max_transactions;
        let conn = self.connections.get_mut(&connection).ok_or(Error::Closed)?;
        if conn.transactions.len() >= limit {
            return Err(Error::LimitReached {
                what: "transactions per connection",
            });
        }
        match conn.transactions.entry(tx) {
            Entry::Occupied(_) => Err(Error::DuplicateTransaction),
            Entry::Vacant(v) => {
                v.insert(Vec::new());
                Ok(())
            }
        }
    }

    fn abort(&mut self, connection: ConnectionId, frame: &Frame) -> Result<(), Error> {
        let tx = require(frame, "transaction")?;
        let conn = self.connections.get_mut(&connection).ok_or(Error::Closed)?;
        conn.transactions
            .remove(&tx)
            .map(|_| ())
            .ok_or(Error::UnknownTransaction)
    }

    fn commit(&mut self, connection: ConnectionId, frame: &Frame) -> Result<(), Error> {
        let tx = require(frame, "transaction")?;
        let conn = self.connections.get_mut(&connection).ok_or(Error::Closed)?;
        let held = conn
            .transactions
            .remove(&tx)
            .ok_or(Error::UnknownTransaction)?;
        // All or nothing: refuse the commit before applying anything if its
        // sends would overflow a queue or the destination table.
        let mut per_queue: HashMap<&[u8], usize> = HashMap::new();
        for f in held.iter().filter(|f| f.command() == Command::Send) {
            let dest = f
                .header_entry("destination")
                .map(|h| h.value_bytes().as_ref())
                .unwrap_or_default();
            if Kind::of(dest) == Kind::Queue {
                *per_queue.entry(dest).or_default() += 1;
            }
        }
        let mut new_destinations = 0;
        for (dest, n) in &per_queue {
            match self.queues.get(*dest) {
                Some(q) if q.waiting.len() + n > self.config.max_queue_depth => {
                    return Err(Error::LimitReached {
                        what: "queue depth",
                    });
                }
                Some(_) => {}
                None if *n > self.config.max_queue_depth => {
                    return Err(Error::LimitReached {
                        what: "queue depth",
                    });
                }
                None => new_destinations += 1,
            }
        }
        if self.destination_count() + new_destinations > self.config.max_destinations {
            return Err(Error::LimitReached {
                what: "destinations",
            });
        }
        for f in &held {
            self.apply(connection, f)?;
        }
        Ok(())
    }

    fn destination_count(&self) -> usize {
        self.queues.len() + self.topics.len()
    }

    fn send(&mut self, frame: &Frame) -> Result<(), Error> {
        let destination = require(frame, "destination")?;
        let kind = Kind::of(&destination);
        if kind == Kind::Queue {
            match self.queues.get(&destination) {
                Some(q) if q.waiting.len() >= self.config.max_queue_depth => {
                    return Err(Error::LimitReached {
                        what: "queue depth",
                    });
                }
                Some(_) => {}
                None if self.destination_count() >= self.config.max_destinations => {
                    return Err(Error::LimitReached {
                        what: "destinations",
                    });
                }
                None if self.config.max_queue_depth == 0 => {
                    return Err(Error::LimitReached {
                        what: "queue depth",
                    });
                }
                None => {}
            }
        }
        self.next_message += 1;
        let headers = frame
            .headers()
            .iter()
            .filter(|h| {
                !matches!(
                    h.name(),
                    "destination" | "transaction" | "receipt" | "content-length"
                )
            })
            .cloned()
            .collect();
        let message = Arc::new(StoredMessage {
            message_id: Bytes::from(format!("m-{}", self.next_message)),
            destination: destination.clone(),
            headers,
            body: frame.body().clone(),
        });
        let queued = Queued {
            message,
            redelivered: false,
        };
        match kind {
            Kind::Queue => {
                self.queues
                    .entry(destination.clone())
                    .or_default()
                    .waiting
                    .push_back(queued);
                self.dispatch(&destination);
            }
            Kind::Topic => {
                let subscribers = self.topics.get(&destination).cloned().unwrap_or_default();
                for key in subscribers {
                    self.offer_topic(&key, queued.clone());
                }
            }
        }
        Ok(())
    }

    /// Hands a topic message to one subscription, or to its backlog.
    fn offer_topic(&mut self, key: &SubKey, queued: Queued) {
        let (max_unacked, max_backlog) = (self.config.max_unacked, self.config.max_topic_backlog);
        let Some(sub) = self.subscription_mut(key) else {
            return;
        };
        let has_room = !sub.ack.needs_ack() || sub.unacked.len() < max_unacked;
        if has_room && sub.backlog.is_empty() {
            self.deliver(key, queued);
        } else if sub.backlog.len() < max_backlog {
            sub.backlog.push_back(queued);
        } else {
            self.dropped_topic_messages += 1;
        }
    }

    /// Moves topic backlog into a subscription that has room again.
    fn drain_backlog(&mut self, key: &SubKey) {
        let max_unacked = self.config.max_unacked;
        loop {
            let Some(sub) = self.subscription_mut(key) else {
                return;
            };
            if sub.ack.needs_ack() && sub.unacked.len() >= max_unacked {
                return;
            }
            let Some(queued) = sub.backlog.pop_front() else {
                return;
            };
            self.deliver(key, queued);
        }
    }

    fn subscription_mut(&mut self, key: &SubKey) -> Option<&mut Subscription> {
        self.connections
            .get_mut(&key.0)?
            .subscriptions
            .get_mut(&key.1)
    }

    /// Delivers waiting queue messages round robin to subscriptions with
    /// room.
    fn dispatch(&mut self, destination: &Bytes) {
        let max_unacked = self.config.max_unacked;
        loop {
            let Some(queue) = self.queues.get(destination) else {
                return;
            };
            if queue.waiting.is_empty() {
                break;
            }
            let n = queue.subscribers.len();
            let mut chosen = None;
            for i in 0..n {
                let idx = (queue.cursor + i) % n;
                let Some(key) = queue.subscribers.get(idx) else {
                    continue;
                };
                let room = self
                    .connections
                    .get(&key.0)
                    .and_then(|c| c.subscriptions.get(&key.1))
                    .is_some_and(|s| !s.ack.needs_ack() || s.unacked.len() < max_unacked);
                if room {
                    chosen = Some((idx, key.clone()));
                    break;
                }
            }
            let Some((idx, key)) = chosen else { break };
            let Some(queue) = self.queues.get_mut(destination) else {
                return;
            };
            queue.cursor = (idx + 1) % n;
            let Some(queued) = queue.waiting.pop_front() else {
                break;
            };
            self.deliver(&key, queued);
        }
        self.forget_if_idle(destination);
    }

    /// Drops bookkeeping for a queue with nothing waiting and nobody
    /// subscribed, so the destination table only holds live destinations.
    fn forget_if_idle(&mut self, destination: &Bytes) {
        if self
            .queues
            .get(destination)
            .is_some_and(|q| q.waiting.is_empty() && q.subscribers.is_empty())
        {
            self.queues.remove(destination);
        }
    }

    /// Sends one message to one subscription and books it.
    fn deliver(&mut self, key: &SubKey, queued: Queued) {
        self.next_delivery += 1;
        let ack_id = self.next_delivery;
        let Some(conn) = self.connections.get_mut(&key.0) else {
            return;
        };
        let Some(sub) = conn.subscriptions.get_mut(&key.1) else {
            return;
        };
        let m = &queued.message;
        let mut headers = Vec::with_capacity(5 + m.headers.len());
        headers.push(header("destination", m.destination.clone()));
        headers.push(header("message-id", m.message_id.clone()));
        headers.push(header("subscription", key.1.clone()));
        if sub.ack.needs_ack() {
            headers.push(header("ack", Bytes::from(format!("d-{ack_id}"))));
        }
        if queued.redelivered {
            headers.push(Header::from_static("redelivered", "true"));
        }
        headers.extend(m.headers.iter().cloned());
        let frame = Frame::from_parts(Command::Message, headers, m.body.clone());
        if sub.ack.needs_ack() {
            sub.unacked.push_back(Delivery { ack_id, queued });
            conn.ack_index.insert(ack_id, key.1.clone());
        }
        self.output.push_back(BrokerOutput {
            connection: key.0,
            frame,
        });
    }

    fn subscribe(&mut self, connection: ConnectionId, frame: &Frame) -> Result<(), Error> {
        let destination = require(frame, "destination")?;
        let ack = match frame.header("ack") {
            None => AckMode::Auto,
            Some(a) => AckMode::parse(a).ok_or(Error::InvalidHeader { header: "ack" })?,
        };
        let kind = Kind::of(&destination);
        let is_new_destination = match kind {
            Kind::Queue => !self.queues.contains_key(&destination),
            Kind::Topic => !self.topics.contains_key(&destination),
        };
        if is_new_destination && self.destination_count() >= self.config.max_destinations {
            return Err(Error::LimitReached {
                what: "destinations",
            });
        }
        let max_subscriptions = self.config.max_subscriptions;
        let conn = self.connections.get_mut(&connection).ok_or(Error::Closed)?;
        // STOMP 1.0 subscriptions may lack an id; the destination stands in.
        let id = match frame.header_entry("id") {
            Some(h) => h.value_bytes().clone(),
            None if conn.version == Version::V1_0 => destination.clone(),
            None => {
                return Err(Error::MissingHeader {
                    command: Command::Subscribe,
                    header: "id",
                });
            }
        };
        if conn.subscriptions.len() >= max_subscriptions {
            return Err(Error::LimitReached {
                what: "subscriptions per connection",
            });
        }
        if conn.subscriptions.contains_key(&id) {
            return Err(Error::DuplicateSubscription);
        }
        conn.subscriptions.insert(
            id.clone(),
            Subscription {
                destination: destination.clone(),
                kind,
                ack,
                unacked: VecDeque::new(),
                backlog: VecDeque::new(),
            },
        );
        let key = (connection, id);
        match kind {
            Kind::Queue => {
                self.queues
                    .entry(destination.clone())
                    .or_default()
                    .subscribers
                    .push(key);
                self.dispatch(&destination);
            }
            Kind::Topic => self.topics.entry(destination).or_default().push(key),
        }
        Ok(())
    }

    fn unsubscribe(&mut self, connection: ConnectionId, frame: &Frame) -> Result<(), Error> {
        let conn = self.connections.get_mut(&connection).ok_or(Error::Closed)?;
        let id = match frame.header_entry("id") {
            Some(h) => h.value_bytes().clone(),
            // STOMP 1.0 may unsubscribe by destination.
            None => {
                let dest = require(frame, "destination")?;
                conn.subscriptions
                    .iter()
                    .find(|(_, s)| s.destination == dest)
                    .map(|(id, _)| id.clone())
                    .ok_or(Error::UnknownSubscription)?
            }
        };
        let sub = conn
            .subscriptions
            .remove(&id)
            .ok_or(Error::UnknownSubscription)?;
        for d in &sub.unacked {
            conn.ack_index.remove(&d.ack_id);
        }
        self.detach(connection, id, sub);
        Ok(())
    }

    /// Unhooks a subscription that was removed from its connection and
    /// puts its unacknowledged queue messages back.
    fn detach(&mut self, connection: ConnectionId, id: Bytes, sub: Subscription) {
        let key = (connection, id);
        match sub.kind {
            Kind::Queue => {
                if let Some(queue) = self.queues.get_mut(&sub.destination) {
                    if let Some(pos) = queue.subscribers.iter().position(|k| *k == key) {
                        queue.subscribers.remove(pos);
                        if pos < queue.cursor {
                            queue.cursor -= 1;
                        }
                        if queue.cursor >= queue.subscribers.len() {
                            queue.cursor = 0;
                        }
                    }
                }
                self.requeue(&sub.destination, sub.unacked.into_iter().map(|d| d.queued));
                self.dispatch(&sub.destination);
            }
            Kind::Topic => {
                if let Some(subs) = self.topics.get_mut(&sub.destination) {
                    subs.retain(|k| *k != key);
                    if subs.is_empty() {
                        self.topics.remove(&sub.destination);
                    }
                }
            }
        }
    }

    /// Puts messages back at the front of a queue, keeping their order. A
    /// redelivery may take the queue past its depth limit: these messages
    /// were already accepted and are never dropped.
    fn requeue(&mut self, destination: &Bytes, messages: impl DoubleEndedIterator<Item = Queued>) {
        let queue = self.queues.entry(destination.clone()).or_default();
        for mut q in messages.rev() {
            q.redelivered = true;
            queue.waiting.push_front(q);
        }
    }

    fn acknowledge(
        &mut self,
        connection: ConnectionId,
        frame: &Frame,
        nack: bool,
    ) -> Result<(), Error> {
        let conn = self.connections.get_mut(&connection).ok_or(Error::Closed)?;
        let found = match conn.version {
            Version::V1_2 => {
                let id = require_str(frame, "id")?;
                parse_id("d-", id).and_then(|ack_id| {
                    let sub_id = conn.ack_index.get(&ack_id)?;
                    let sub = conn.subscriptions.get(sub_id)?;
                    let pos = sub.unacked.iter().position(|d| d.ack_id == ack_id)?;
                    Some((sub_id.clone(), pos))
                })
            }
            version => {
                let message_id = require_str(frame, "message-id")?;
                let subscription = match frame.header_entry("subscription") {
                    Some(h) => Some(h.value_bytes().clone()),
                    None if version == Version::V1_0 => None,
                    None => {
                        return Err(Error::MissingHeader {
                            command: frame.command(),
                            header: "subscription",
                        });
                    }
                };
                conn.subscriptions
                    .iter()
                    .filter(|(id, _)| subscription.as_ref().is_none_or(|s| s == *id))
                    .find_map(|(id, sub)| {
                        let pos = sub.unacked.iter().position(|d| {
                            d.queued.message.message_id.as_ref() == message_id.as_bytes()
                        })?;
                        Some((id.clone(), pos))
                    })
            }
        };
        let Some((sub_id, pos)) = found else {
            return Ok(());
        };
        let Some(sub) = conn.subscriptions.get_mut(&sub_id) else {
            return Ok(());
        };
        let settled: Vec<Delivery> = match sub.ack {
            AckMode::Client => sub.unacked.drain(..=pos).collect(),
            AckMode::ClientIndividual | AckMode::Auto => {
                sub.unacked.remove(pos).into_iter().collect()
            }
        };
        for d in &settled {
            conn.ack_index.remove(&d.ack_id);
        }
        let (kind, destination) = (sub.kind, sub.destination.clone());
        let key = (connection, sub_id);
        match kind {
            Kind::Queue => {
                if nack {
                    self.requeue(&destination, settled.into_iter().map(|d| d.queued));
                }
                self.dispatch(&destination);
            }
            Kind::Topic => self.drain_backlog(&key),
        }
        Ok(())
    }
}

fn require(frame: &Frame, name: &'static str) -> Result<Bytes, Error> {
    frame
        .header_entry(name)
        .map(|h| h.value_bytes().clone())
        .ok_or(Error::MissingHeader {
            command: frame.command(),
            header: name,
        })
}

fn require_str<'a>(frame: &'a Frame, name: &'static str) -> Result<&'a str, Error> {
    frame.header(name).ok_or(Error::MissingHeader {
        command: frame.command(),
        header: name,
    })
}
