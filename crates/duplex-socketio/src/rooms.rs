//! Rooms: named groups of sockets, and the recipients of a broadcast.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Who a broadcast goes to.
///
/// With no `rooms` it goes to every socket; otherwise to the members of any
/// of them (each once). Members of `except_rooms` and the sockets in
/// `except` (typically the sender) are left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast<S> {
    /// Target rooms; empty means every socket.
    pub rooms: Vec<String>,
    /// Rooms whose members are left out.
    pub except_rooms: Vec<String>,
    /// Sockets left out.
    pub except: Vec<S>,
}

impl<S> Default for Broadcast<S> {
    fn default() -> Self {
        Self {
            rooms: Vec::new(),
            except_rooms: Vec::new(),
            except: Vec::new(),
        }
    }
}

impl<S> Broadcast<S> {
    /// To every socket.
    pub fn all() -> Self {
        Self::default()
    }

    /// To the members of `room`.
    pub fn to(room: impl Into<String>) -> Self {
        Self::default().and_to(room)
    }

    /// Also to the members of `room`.
    pub fn and_to(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Not to the members of `room`.
    pub fn except_room(mut self, room: impl Into<String>) -> Self {
        self.except_rooms.push(room.into());
        self
    }

    /// Not to `socket` (the sender, say).
    pub fn except_socket(mut self, socket: S) -> Self {
        self.except.push(socket);
        self
    }
}

/// Room membership of the sockets of one namespace.
///
/// A broadcast is encoded once ([`Packet::encode`](crate::Packet::encode))
/// and the same [`EncodedPacket`](crate::EncodedPacket), whose bytes are
/// shared, is written to each socket [`Rooms::recipients`] yields.
///
/// ```
/// use duplex_socketio::{Broadcast, Packet, Rooms};
///
/// let mut rooms = Rooms::new();
/// for (socket, room) in [(1, "chat"), (2, "chat"), (3, "chat"), (3, "admins")] {
///     rooms.join(socket, room);
/// }
/// let wire = Packet::event_with("/", "hello", &[], None).unwrap().encode();
/// let mut sent: Vec<u32> = rooms
///     .recipients(&Broadcast::to("chat").except_room("admins").except_socket(1))
///     .copied()
///     .collect();
/// sent.sort();
/// assert_eq!(sent, [2]);
/// assert_eq!(wire.text, r#"2["hello"]"#);
/// ```
#[derive(Debug)]
pub struct Rooms<S> {
    rooms: HashMap<String, HashSet<S>>,
    sockets: HashMap<S, HashSet<String>>,
}

impl<S> Default for Rooms<S> {
    fn default() -> Self {
        Self {
            rooms: HashMap::new(),
            sockets: HashMap::new(),
        }
    }
}

impl<S: Clone + Eq + Hash> Rooms<S> {
    /// No sockets, no rooms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a socket (in no room yet), so that broadcasts to all reach it.
    pub fn add_socket(&mut self, socket: S) {
        self.sockets.entry(socket).or_default();
    }

    /// Removes a socket from every room and from the namespace.
    pub fn remove_socket(&mut self, socket: &S) {
        if let Some(joined) = self.sockets.remove(socket) {
            for room in joined {
                self.remove_member(&room, socket);
            }
        }
    }

    /// Puts `socket` in `room` (registering it if needed). Returns whether
    /// it was not in it already.
    pub fn join(&mut self, socket: S, room: impl Into<String>) -> bool {
        let room = room.into();
        let added = self
            .rooms
            .entry(room.clone())
            .or_default()
            .insert(socket.clone());
        self.sockets.entry(socket).or_default().insert(room);
        added
    }

    /// Takes `socket` out of `room`. Returns whether it was in it.
    pub fn leave(&mut self, socket: &S, room: &str) -> bool {
        let was = self.sockets.get_mut(socket).is_some_and(|r| r.remove(room));
        if was {
            self.remove_member(room, socket);
        }
        was
    }

    fn remove_member(&mut self, room: &str, socket: &S) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(socket);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// The rooms `socket` is in.
    pub fn rooms_of(&self, socket: &S) -> impl Iterator<Item = &str> {
        self.sockets
            .get(socket)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The members of `room`.
    pub fn members(&self, room: &str) -> impl Iterator<Item = &S> {
        self.rooms.get(room).into_iter().flatten()
    }

    /// Every room with at least one member.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// Every registered socket.
    pub fn sockets(&self) -> impl Iterator<Item = &S> {
        self.sockets.keys()
    }

    /// The sockets a broadcast reaches, each once.
    pub fn recipients<'a>(&'a self, target: &'a Broadcast<S>) -> impl Iterator<Item = &'a S> + 'a {
        let candidates: Box<dyn Iterator<Item = &'a S> + 'a> = if target.rooms.is_empty() {
            Box::new(self.sockets.keys())
        } else {
            Box::new(target.rooms.iter().flat_map(|room| self.members(room)))
        };
        // Only needed when several rooms may share members.
        let mut seen = (target.rooms.len() > 1).then(HashSet::new);
        candidates.filter(move |socket| {
            if target.except.contains(socket) {
                return false;
            }
            if target
                .except_rooms
                .iter()
                .any(|room| self.rooms.get(room).is_some_and(|m| m.contains(*socket)))
            {
                return false;
            }
            seen.as_mut().is_none_or(|seen| seen.insert(*socket))
        })
    }
}
