//! Requests awaiting other nodes' answers: how many answers are expected,
//! what is collected, and when to give up. Time is an input.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::{Error, FetchedSocket, RequestTimeout};
use crate::Value;

/// Limits of [`Requests`].
#[derive(Clone, Debug)]
pub struct RequestsConfig {
    /// How long to wait for answers: Node's `requestsTimeout` and
    /// `DEFAULT_TIMEOUT`, 5 s.
    pub timeout: Duration,
    /// Requests in flight at most (each holds its collected answers);
    /// 1024 by default.
    pub max_pending: usize,
    /// Events not yet polled at most; the oldest are dropped beyond it.
    /// 4096 by default.
    pub max_events: usize,
}

impl Default for RequestsConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_pending: 1024,
            max_events: 4096,
        }
    }
}

/// What a request asks the other nodes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Classic SOCKETS: socket ids, merged into a set.
    Sockets,
    /// Classic ALL_ROOMS: rooms, merged into a set.
    AllRooms,
    /// REMOTE_FETCH / FETCH_SOCKETS: sockets, appended.
    Fetch,
    /// SERVER_SIDE_EMIT with an ack: one value per node.
    ServerSideEmit,
    /// A legacy sid-form REMOTE_JOIN/LEAVE/DISCONNECT: the first answer
    /// completes it.
    Single,
}

/// How many answers complete a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A count: the server count (NUMSUB) less this node.
    Count(usize),
    /// The uids of the other nodes, as the heartbeat cluster knows them:
    /// each must answer, or leave.
    Nodes(HashSet<String>),
}

/// One node's answer to a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Socket ids (SOCKETS).
    SocketIds(Vec<String>),
    /// Rooms (ALL_ROOMS).
    Rooms(Vec<String>),
    /// Sockets (FETCH).
    Sockets(Vec<FetchedSocket>),
    /// The argument of a server-side emit callback.
    Emit(Value),
    /// A legacy request done.
    Done,
}

/// What became of requests, and the acks of broadcasts, for the caller.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestEvent {
    /// Every expected answer arrived. `result` is the collected answers:
    /// `SocketIds`/`Rooms` deduplicated in arrival order (local ones
    /// first), `Sockets` appended, one `Emit` value per node in order.
    Completed {
        /// The request.
        request_id: String,
        /// Its kind.
        kind: RequestKind,
        /// What was collected.
        result: Vec<Answer>,
    },
    /// The timeout came first. Node rejects fetches and room listings,
    /// and calls a server-side emit's ack with the error and the partial
    /// `result`.
    TimedOut {
        /// The request.
        request_id: String,
        /// Its kind.
        kind: RequestKind,
        /// What had been collected.
        result: Vec<Answer>,
        /// Why (its `Display` is Node's error text).
        error: RequestTimeout,
    },
    /// A node's count of the clients a broadcast with acks reached.
    ClientCount {
        /// The broadcast.
        request_id: String,
        /// The count.
        client_count: u64,
    },
    /// One client's ack of a broadcast.
    ClientAck {
        /// The broadcast.
        request_id: String,
        /// The first argument of its ack.
        value: Value,
    },
}

/// The acks of one broadcast with acks across the cluster, as
/// socket.io-adapter's `broadcastWithAck` counts them: complete once every
/// other server has said how many of its clients the broadcast reached
/// ([`RequestEvent::ClientCount`]) and that many acks, plus the local
/// clients' ones, arrived ([`RequestEvent::ClientAck`], or the local acks).
/// The broadcast's timeout ends it with what arrived
/// ([`BroadcastAcks::into_responses`]).
#[derive(Debug)]
pub struct BroadcastAcks {
    /// Other servers whose client count is still awaited.
    remaining_servers: usize,
    /// Acks expected: the local clients and every counted remote one.
    expected: u64,
    responses: Vec<Value>,
}

impl BroadcastAcks {
    /// A broadcast that reached `local_clients` here and went to
    /// `other_servers` more (0 for a `local` broadcast or no cluster).
    pub fn new(other_servers: usize, local_clients: usize) -> Self {
        Self {
            remaining_servers: other_servers,
            expected: local_clients as u64,
            responses: Vec::new(),
        }
    }

    /// Another server's count of the clients the broadcast reached there.
    pub fn handle_client_count(&mut self, client_count: u64) {
        self.remaining_servers = self.remaining_servers.saturating_sub(1);
        self.expected = self.expected.saturating_add(client_count);
    }

    /// One client's ack (the first argument of its callback).
    pub fn handle_ack(&mut self, value: Value) {
        self.responses.push(value);
    }

    /// Whether every server counted and every counted ack arrived.
    pub fn is_complete(&self) -> bool {
        self.remaining_servers == 0 && self.responses.len() as u64 >= self.expected
    }

    /// The acks so far, in arrival order.
    pub fn into_responses(self) -> Vec<Value> {
        self.responses
    }
}

#[derive(Debug)]
struct Pending {
    kind: RequestKind,
    expected: Expected,
    received: usize,
    deadline: Instant,
    result: Vec<Answer>,
}

/// The requests this node awaits answers to, and the broadcasts with acks
/// whose answers it still forwards.
#[derive(Debug)]
pub struct Requests {
    config: RequestsConfig,
    pending: HashMap<String, Pending>,
    /// Broadcasts with acks, until their `timeout` flag: Node cannot know
    /// when every ack is in, so it just forgets them then.
    acks: HashMap<String, Instant>,
    events: VecDeque<RequestEvent>,
}

impl Requests {
    /// No requests yet.
    pub fn new(config: RequestsConfig) -> Self {
        Self {
            config,
            pending: HashMap::new(),
            acks: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts awaiting answers to `request_id`, which has just been
    /// published. `local` is this node's own part (its rooms, its
    /// sockets), counted first as Node does. Completes at once when no
    /// answer is expected.
    pub fn start(
        &mut self,
        request_id: &str,
        kind: RequestKind,
        expected: Expected,
        local: Vec<Answer>,
        now: Instant,
    ) -> Result<(), Error> {
        self.check_room_for(request_id)?;
        let mut pending = Pending {
            kind,
            expected,
            received: 0,
            deadline: now + self.config.timeout,
            result: Vec::new(),
        };
        for answer in local {
            merge(&mut pending, answer);
        }
        if is_complete(&pending) {
            self.push(RequestEvent::Completed {
                request_id: request_id.to_owned(),
                kind,
                result: pending.result,
            });
        } else {
            self.pending.insert(request_id.to_owned(), pending);
        }
        Ok(())
    }

    /// Refuses a request id already in use, and a request beyond
    /// `max_pending` (requests and broadcasts with acks together).
    fn check_room_for(&self, request_id: &str) -> Result<(), Error> {
        if self.pending.contains_key(request_id) || self.acks.contains_key(request_id) {
            return Err(Error::DuplicateRequestId(request_id.to_owned()));
        }
        if self.pending.len() + self.acks.len() >= self.config.max_pending {
            return Err(Error::TooManyRequests {
                limit: self.config.max_pending,
            });
        }
        Ok(())
    }

    /// Starts forwarding the client counts and acks of broadcast
    /// `request_id` until `timeout` (the broadcast's `timeout` flag).
    pub fn start_broadcast_ack(
        &mut self,
        request_id: &str,
        timeout: Duration,
        now: Instant,
    ) -> Result<(), Error> {
        self.check_room_for(request_id)?;
        self.acks.insert(request_id.to_owned(), now + timeout);
        Ok(())
    }

    /// Whether `request_id` is one of this node's (a node ignores its own
    /// requests coming back on the request channel).
    pub fn is_own(&self, request_id: &str) -> bool {
        self.pending.contains_key(request_id) || self.acks.contains_key(request_id)
    }

    /// The kind of pending request `request_id`.
    pub fn kind_of(&self, request_id: &str) -> Option<RequestKind> {
        self.pending.get(request_id).map(|p| p.kind)
    }

    /// Requests awaiting answers, broadcasts with acks included.
    pub fn len(&self) -> usize {
        self.pending.len() + self.acks.len()
    }

    /// Whether nothing is awaited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An answer from node `from` (its uid, when the message carries one)
    /// to `request_id`. Returns whether a request took it; answers to
    /// unknown or finished requests are ignored, as in Node.
    pub fn handle_answer(&mut self, request_id: &str, from: Option<&str>, answer: Answer) -> bool {
        let Some(pending) = self.pending.get_mut(request_id) else {
            return false;
        };
        match &mut pending.expected {
            Expected::Count(_) => pending.received += 1,
            Expected::Nodes(missing) => {
                if let Some(uid) = from {
                    missing.remove(uid);
                }
                pending.received += 1;
            }
        }
        merge(pending, answer);
        self.complete_if_done(request_id);
        true
    }

    /// A node's client count for broadcast `request_id`.
    pub fn handle_client_count(&mut self, request_id: &str, client_count: u64) -> bool {
        self.push_for_broadcast(request_id, |request_id| RequestEvent::ClientCount {
            request_id,
            client_count,
        })
    }

    /// A client's ack of broadcast `request_id`.
    pub fn handle_client_ack(&mut self, request_id: &str, value: Value) -> bool {
        self.push_for_broadcast(request_id, |request_id| RequestEvent::ClientAck {
            request_id,
            value,
        })
    }

    /// Pushes the event `make` builds when broadcast `request_id` still
    /// awaits acks; an answer to anything else is dropped (`false`).
    fn push_for_broadcast(
        &mut self,
        request_id: &str,
        make: impl FnOnce(String) -> RequestEvent,
    ) -> bool {
        if !self.acks.contains_key(request_id) {
            return false;
        }
        self.push(make(request_id.to_owned()));
        true
    }

    /// Node `uid` left the heartbeat cluster: requests stop waiting for it.
    pub fn node_left(&mut self, uid: &str) {
        let ids: Vec<String> = self
            .pending
            .iter_mut()
            .filter_map(|(id, p)| match &mut p.expected {
                Expected::Nodes(missing) => missing.remove(uid).then(|| id.clone()),
                Expected::Count(_) => None,
            })
            .collect();
        for id in ids {
            self.complete_if_done(&id);
        }
    }

    /// Expires requests whose deadline is `now` or past.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.acks.retain(|_, deadline| *deadline > now);
        let mut expired: Vec<(String, Instant)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, p)| (id.clone(), p.deadline))
            .collect();
        // Oldest first, so that events come in the order Node's timers fire.
        expired.sort_by_key(|(_, d)| *d);
        for (id, _) in expired {
            if let Some(p) = self.pending.remove(&id) {
                let error = match &p.expected {
                    Expected::Count(n) => RequestTimeout::Count {
                        received: p.received,
                        expected: *n,
                    },
                    Expected::Nodes(missing) => RequestTimeout::Missing {
                        missing: missing.len(),
                    },
                };
                self.push(RequestEvent::TimedOut {
                    request_id: id,
                    kind: p.kind,
                    result: p.result,
                    error,
                });
            }
        }
    }

    /// When [`Self::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.deadline)
            .chain(self.acks.values().copied())
            .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RequestEvent> {
        self.events.pop_front()
    }

    fn complete_if_done(&mut self, request_id: &str) {
        let done = self.pending.get(request_id).is_some_and(is_complete);
        if done {
            if let Some(p) = self.pending.remove(request_id) {
                self.push(RequestEvent::Completed {
                    request_id: request_id.to_owned(),
                    kind: p.kind,
                    result: p.result,
                });
            }
        }
    }

    fn push(&mut self, event: RequestEvent) {
        if self.events.len() >= self.config.max_events {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

fn is_complete(p: &Pending) -> bool {
    match &p.expected {
        Expected::Count(n) => p.received >= *n,
        Expected::Nodes(missing) => missing.is_empty(),
    }
}

/// Adds an answer to what a request collected: ids and rooms as a set,
/// the rest appended.
fn merge(p: &mut Pending, answer: Answer) {
    match answer {
        Answer::SocketIds(new) => set_extend(&mut p.result, new, Answer::SocketIds, |a| match a {
            Answer::SocketIds(v) => Some(v),
            _ => None,
        }),
        Answer::Rooms(new) => set_extend(&mut p.result, new, Answer::Rooms, |a| match a {
            Answer::Rooms(v) => Some(v),
            _ => None,
        }),
        Answer::Sockets(new) => {
            if let Some(Answer::Sockets(all)) = p.result.first_mut() {
                all.extend(new);
            } else {
                p.result.push(Answer::Sockets(new));
            }
        }
        other => p.result.push(other),
    }
}

fn set_extend(
    result: &mut Vec<Answer>,
    new: Vec<String>,
    make: fn(Vec<String>) -> Answer,
    get: fn(&mut Answer) -> Option<&mut Vec<String>>,
) {
    if result.first_mut().and_then(get).is_none() {
        result.insert(0, make(Vec::new()));
    }
    if let Some(all) = result.first_mut().and_then(get) {
        let mut seen: HashSet<String> = all.iter().cloned().collect();
        for item in new {
            if seen.insert(item.clone()) {
                all.push(item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node's rule: not complete while a server has not counted, even when
    /// the acks so far match what was expected; complete once the counts
    /// and the acks they announce are in, whatever their order.
    #[test]
    fn broadcast_acks_complete_when_every_server_counted_and_every_ack_came() {
        let mut acks = BroadcastAcks::new(2, 1);
        assert!(!acks.is_complete());
        acks.handle_ack(Value::from(1));
        assert!(!acks.is_complete(), "two servers have not counted");
        acks.handle_client_count(0);
        assert!(!acks.is_complete(), "one server has not counted");
        acks.handle_ack(Value::from(2));
        acks.handle_client_count(2);
        assert!(!acks.is_complete(), "one counted ack is missing");
        acks.handle_ack(Value::from(3));
        assert!(acks.is_complete());
        assert_eq!(
            acks.into_responses(),
            [Value::from(1), Value::from(2), Value::from(3)]
        );
    }

    /// A broadcast that reached nobody and went to no other server is
    /// complete at once, with nothing.
    #[test]
    fn broadcast_acks_to_nobody_complete_at_once() {
        let acks = BroadcastAcks::new(0, 0);
        assert!(acks.is_complete());
        assert!(acks.into_responses().is_empty());
    }
}
