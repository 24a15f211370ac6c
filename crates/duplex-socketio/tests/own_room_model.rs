//! The in-memory adapter's implied own room (a socket's own room is a flag
//! on its entry, not stored): `InMemoryAdapter` against a model of the
//! bookkeeping it replaced (every room, a socket's own included, stored in
//! both maps), over random joins, leaves and disconnects of sockets whose
//! ids are also room names.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};

use duplex_socketio::cluster::{InMemoryAdapter, LocalAdapter, Opts, RoomChange};

/// socket.io-adapter's in-memory bookkeeping, as the adapter kept it
/// before its own room was implied (81180f3).
#[derive(Default)]
struct Model {
    rooms: HashMap<String, HashSet<String>>,
    sids: HashMap<String, HashSet<String>>,
}

impl Model {
    fn add_all(&mut self, sid: &str, rooms: &[String]) -> Vec<RoomChange> {
        let mut changes = Vec::new();
        let own = self.sids.entry(sid.to_owned()).or_default();
        for room in rooms {
            own.insert(room.clone());
        }
        for room in rooms {
            let members = self.rooms.entry(room.clone()).or_insert_with(|| {
                changes.push(RoomChange::Created(room.clone()));
                HashSet::new()
            });
            members.insert(sid.to_owned());
        }
        changes
    }

    fn del_inner(&mut self, room: &str, sid: &str, changes: &mut Vec<RoomChange>) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(sid);
            if members.is_empty() {
                self.rooms.remove(room);
                changes.push(RoomChange::Deleted(room.to_owned()));
            }
        }
    }

    fn del(&mut self, sid: &str, room: &str) -> Vec<RoomChange> {
        let mut changes = Vec::new();
        if let Some(own) = self.sids.get_mut(sid) {
            own.remove(room);
        }
        self.del_inner(room, sid, &mut changes);
        changes
    }

    fn del_all(&mut self, sid: &str) -> Vec<RoomChange> {
        let mut changes = Vec::new();
        if let Some(own) = self.sids.remove(sid) {
            for room in own {
                self.del_inner(&room, sid, &mut changes);
            }
        }
        changes
    }

    fn select(&self, opts: &Opts) -> Vec<String> {
        let except: HashSet<&String> = opts
            .except
            .iter()
            .filter_map(|r| self.rooms.get(r))
            .flatten()
            .collect();
        if opts.rooms.is_empty() {
            return self
                .sids
                .keys()
                .filter(|s| !except.contains(s))
                .cloned()
                .collect();
        }
        let mut out: Vec<String> = opts
            .rooms
            .iter()
            .filter_map(|r| self.rooms.get(r))
            .flatten()
            .filter(|s| !except.contains(s))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn sorted<T: Ord + std::fmt::Debug>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn changes(v: Vec<RoomChange>) -> Vec<String> {
    sorted(v.into_iter().map(|c| format!("{c:?}")).collect())
}

/// A small xorshift: the sequences are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const SIDS: [&str; 3] = ["s1", "s2", "s3"];
const ROOMS: [&str; 5] = ["s1", "s2", "s3", "r1", "r2"];

fn some_rooms(rng: &mut Rng) -> Vec<String> {
    (0..rng.below(4))
        .map(|_| ROOMS[rng.below(ROOMS.len())].to_owned())
        .collect()
}

#[test]
fn the_implied_own_room_behaves_as_the_stored_one_did() {
    for seed in 1..=1000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut model = Model::default();
        let mut adapter = InMemoryAdapter::new();
        let mut log = Vec::new();
        for _ in 0..12 {
            let sid = SIDS[rng.below(SIDS.len())];
            let (got, want) = match rng.below(4) {
                0 => {
                    // A connection: the socket's own room first.
                    let mut rooms = vec![sid.to_owned()];
                    rooms.extend(some_rooms(&mut rng));
                    log.push(format!("add_all({sid}, {rooms:?})"));
                    (adapter.add_all(sid, &rooms), model.add_all(sid, &rooms))
                }
                1 => {
                    let rooms = some_rooms(&mut rng);
                    log.push(format!("add_all({sid}, {rooms:?})"));
                    (adapter.add_all(sid, &rooms), model.add_all(sid, &rooms))
                }
                2 => {
                    let room = ROOMS[rng.below(ROOMS.len())];
                    log.push(format!("del({sid}, {room})"));
                    (adapter.del(sid, room), model.del(sid, room))
                }
                _ => {
                    log.push(format!("del_all({sid})"));
                    (adapter.del_all(sid), model.del_all(sid))
                }
            };
            assert_eq!(changes(got), changes(want), "room changes after {log:?}");
            for room in ROOMS {
                assert_eq!(
                    adapter.has_room(room),
                    model.rooms.contains_key(room),
                    "has_room({room}) after {log:?}"
                );
                let opts = Opts::rooms([room]);
                assert_eq!(
                    sorted(adapter.select(&opts)),
                    model.select(&opts),
                    "select(to {room}) after {log:?}"
                );
                let opts = Opts::default().except([room]);
                assert_eq!(
                    sorted(adapter.select(&opts)),
                    sorted(model.select(&opts)),
                    "select(except {room}) after {log:?}"
                );
                let opts = Opts::rooms(["r1", room]).except(["s2"]);
                assert_eq!(
                    sorted(adapter.select(&opts)),
                    model.select(&opts),
                    "select(to r1+{room} except s2) after {log:?}"
                );
            }
            for sid in SIDS {
                assert_eq!(adapter.has_socket(sid), model.sids.contains_key(sid));
                let want = model
                    .sids
                    .get(sid)
                    .map(|r| sorted(r.iter().cloned().collect()))
                    .unwrap_or_default();
                assert_eq!(
                    sorted(adapter.rooms_of(sid)),
                    want,
                    "rooms_of({sid}) after {log:?}"
                );
            }
            assert_eq!(
                sorted(adapter.all_rooms()),
                sorted(model.rooms.keys().cloned().collect()),
                "all_rooms after {log:?}"
            );
        }
    }
}
