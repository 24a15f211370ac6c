//! The node count of socket.io-adapter's `ClusterAdapterWithHeartbeat`:
//! every node publishes a heartbeat when it has published nothing for
//! `heartbeatInterval`, and a node not heard from for `heartbeatTimeout`
//! is gone. (The sharded Redis adapter 8.3.0 counts with SHARDNUMSUB
//! instead; this serves adapters on engines without such a count.)

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::sharded::{ClusterBody, ClusterMessage, EMITTER_UID};

/// Timers of [`Heartbeats`], Node's defaults.
#[derive(Clone, Debug)]
pub struct HeartbeatsConfig {
    /// Quiet time after which a heartbeat is published: 5 s.
    pub interval: Duration,
    /// Silence after which a node is gone: 10 s.
    pub timeout: Duration,
    /// How often silent nodes are looked for: 1 s.
    pub cleanup_every: Duration,
    /// Nodes tracked at most; a flood of made-up uids cannot grow the map
    /// beyond it. 4096 by default.
    pub max_nodes: usize,
}

impl Default for HeartbeatsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            cleanup_every: Duration::from_secs(1),
            max_nodes: 4096,
        }
    }
}

/// The other nodes of a heartbeat cluster, and the heartbeats to publish.
#[derive(Debug)]
pub struct Heartbeats {
    config: HeartbeatsConfig,
    uid: String,
    nodes: HashMap<String, Instant>,
    next_heartbeat: Option<Instant>,
    next_cleanup: Instant,
    to_publish: VecDeque<ClusterBody>,
    gone: VecDeque<String>,
}

impl Heartbeats {
    /// Starts node `uid`: an INITIAL_HEARTBEAT is to be published, to which
    /// the others answer with heartbeats (and so are counted).
    pub fn new(uid: &str, config: HeartbeatsConfig, now: Instant) -> Self {
        let mut this = Self {
            next_cleanup: now + config.cleanup_every,
            config,
            uid: uid.to_owned(),
            nodes: HashMap::new(),
            next_heartbeat: None,
            to_publish: VecDeque::new(),
            gone: VecDeque::new(),
        };
        this.publish(ClusterBody::InitialHeartbeat, now);
        this
    }

    /// This node published something (any message): the next heartbeat
    /// is due an interval later.
    pub fn on_published(&mut self, now: Instant) {
        self.next_heartbeat = Some(now + self.config.interval);
    }

    fn publish(&mut self, body: ClusterBody, now: Instant) {
        self.on_published(now);
        self.to_publish.push_back(body);
    }

    /// A message from the cluster. Returns `true` when it was a heartbeat
    /// message (1, 2, 13) and so is fully handled here; other messages
    /// still count their sender as alive and go on to the adapter.
    pub fn handle_message(&mut self, message: &ClusterMessage, now: Instant) -> bool {
        if message.uid == self.uid {
            return true;
        }
        let counted = !message.uid.is_empty() && message.uid != EMITTER_UID;
        if counted
            && (self.nodes.contains_key(&message.uid) || self.nodes.len() < self.config.max_nodes)
        {
            self.nodes.insert(message.uid.clone(), now);
        }
        match message.body {
            ClusterBody::InitialHeartbeat => {
                self.publish(ClusterBody::Heartbeat, now);
                true
            }
            ClusterBody::Heartbeat => true,
            ClusterBody::AdapterClose => {
                self.remove(&message.uid);
                true
            }
            _ => false,
        }
    }

    fn remove(&mut self, uid: &str) {
        if self.nodes.remove(uid).is_some() {
            self.gone.push_back(uid.to_owned());
        }
    }

    /// Publishes due heartbeats and forgets silent nodes.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.publish(ClusterBody::Heartbeat, now);
        }
        if self.next_cleanup <= now {
            // Only the last cleanup tick due matters: silence only grows,
            // so whoever an earlier tick would remove, it removes too. This
            // keeps a late call from looping once per missed tick.
            let every = self.config.cleanup_every.max(Duration::from_millis(1));
            let behind = now.saturating_duration_since(self.next_cleanup);
            let missed = u32::try_from(behind.as_nanos() / every.as_nanos()).unwrap_or(u32::MAX);
            let tick = self.next_cleanup + every.saturating_mul(missed);
            let timeout = self.config.timeout;
            let silent: Vec<String> = self
                .nodes
                .iter()
                .filter(|(_, seen)| tick.saturating_duration_since(**seen) > timeout)
                .map(|(uid, _)| uid.clone())
                .collect();
            for uid in silent {
                self.remove(&uid);
            }
            self.next_cleanup = tick + every;
        }
    }

    /// When [`Self::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(match self.next_heartbeat {
            Some(h) => h.min(self.next_cleanup),
            None => self.next_cleanup,
        })
    }

    /// The next message body to publish on the main channel.
    pub fn poll_publish(&mut self) -> Option<ClusterBody> {
        self.to_publish.pop_front()
    }

    /// The next node found gone (pass it to
    /// [`super::Requests::node_left`]).
    pub fn poll_gone(&mut self) -> Option<String> {
        self.gone.pop_front()
    }

    /// The uids of the other live nodes.
    pub fn other_nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The server count: this node and the others alive.
    pub fn server_count(&self) -> usize {
        1 + self.nodes.len()
    }

    /// This node is closing: ADAPTER_CLOSE is to be published.
    pub fn close(&mut self, now: Instant) {
        self.publish(ClusterBody::AdapterClose, now);
        self.next_heartbeat = None;
    }
}
