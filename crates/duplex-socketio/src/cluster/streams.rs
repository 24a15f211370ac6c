//! The Redis streams adapter's wire (npm `@socket.io/redis-streams-adapter`
//! 0.2.x and 0.3.x, [`StreamsVersion`]): cluster messages are entries of a
//! stream, and connection state recovery keeps sessions in Redis keys, so
//! that a client cut from one node is restored by another.
//!
//! * 0.2.x: every message is an entry of the one stream, responses too,
//!   and nodes count each other by heartbeats (socket.io-adapter's
//!   `ClusterAdapterWithHeartbeat`, messages 1, 2 and 13).
//! * 0.3.x: no heartbeats. The requests (fetchSockets, serverSideEmit,
//!   a broadcast with acks) are PUBLISHed on `<channelPrefix>#<nsp>#` and
//!   the responses on the requester's `<channelPrefix>#<nsp>#<uid>#`, as
//!   MessagePack of the whole message `{type, data, uid, nsp}`
//!   ([`encode_pubsub`], [`decode_pubsub`]); every node subscribes to
//!   both, and the server count is `PUBSUB NUMSUB` of the first. The rest
//!   (broadcasts, room changes, disconnections) stays in the stream, which
//!   with `streamCount` > 1 is one of `<streamName>-<i>`, chosen per
//!   namespace ([`stream_name`]).
//!
//! * A stream entry has the fields `uid`, `nsp`, `type` (the cluster
//!   message type in decimal) and, when the message has data, `data`: JSON
//!   text, or base64 of MessagePack when a type that may carry binary
//!   (3, 8, 9, 10, 12) does ([`encode_entry`], [`decode_entry`]). A reader
//!   takes `data` starting with `{` as JSON, anything else as base64.
//! * The offset of a broadcast is its entry id (`<ms>-<seq>`, [`StreamId`]),
//!   appended as the event's last argument by the publishing node (with
//!   the id `XADD` returned) and by every reader (with the id it read).
//! * A session lost for a transport reason is kept under
//!   `<prefix><pid>` as base64 of MessagePack `{sid, pid, rooms, data}`
//!   ([`encode_session`], [`decode_session`]) for the recovery duration
//!   (`SET .. PX`); a restore takes it (`GET` + `DEL` in `MULTI`), checks
//!   that the offset is still an entry (`XRANGE <offset> <offset>`), and
//!   replays the broadcasts after it that the session's rooms select
//!   ([`RestoreQuery`]).
//!
//! Nothing here talks to Redis: the IO layer runs the commands
//! [`RestoreQuery`] names and feeds the replies back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::message::{Format, Opts, WirePacket};
use super::msgpack;
use super::sharded::{ClusterBody, ClusterMessage};
use super::{Error, message::strings};
use crate::Value;
use crate::recovery::Session;

/// The default stream name (`streamName` option).
pub const DEFAULT_STREAM: &str = "socket.io";

/// The default prefix of session keys (`sessionKeyPrefix` option).
pub const DEFAULT_SESSION_KEY_PREFIX: &str = "sio:session:";

/// The default approximate bound of the stream (`maxLen`, `MAXLEN ~`).
pub const DEFAULT_MAX_LEN: usize = 10_000;

/// The default number of entries per read (`readCount`, `XREAD COUNT`).
pub const DEFAULT_READ_COUNT: usize = 100;

/// The default prefix of the pub/sub channels of 0.3.x
/// (`channelPrefix`).
pub const DEFAULT_CHANNEL_PREFIX: &str = "socket.io";

/// Which release line of `@socket.io/redis-streams-adapter` a node speaks.
/// They do not mix: a 0.3.x node neither sends nor counts heartbeats, and
/// answers requests on channels a 0.2.x node does not read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamsVersion {
    /// 0.2.x: everything in the stream, heartbeats count the nodes.
    V0_2,
    /// 0.3.x (npm's `latest` since February 2026): requests and responses
    /// over pub/sub, the server count from `PUBSUB NUMSUB`.
    #[default]
    V0_3,
}

/// Java's `String.hashCode` as 0.3.x's `hashCode` computes it: over UTF-16
/// units, wrapping at 32 bits.
pub fn hash_code(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The stream of namespace `nsp` (0.3.x's `computeStreamName`): `stream`
/// itself when `count` is 1 (or 0), else `<stream>-<hashCode(nsp) %
/// count>`, the remainder keeping JavaScript's sign (`socket.io--1` is a
/// name Node uses).
pub fn stream_name(stream: &str, count: usize, nsp: &str) -> String {
    if count <= 1 {
        return stream.to_owned();
    }
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    format!("{stream}-{}", i64::from(hash_code(nsp)) % count)
}

/// The bytes 0.3.x PUBLISHes a request or a response as: MessagePack of
/// the whole message (`@msgpack/msgpack`'s `encode`), binary or not.
pub fn encode_pubsub(message: &ClusterMessage) -> Vec<u8> {
    msgpack::encode(&message.to_value())
}

/// A message 0.3.x PUBLISHed (MessagePack only: it never sends JSON).
pub fn decode_pubsub(payload: &[u8]) -> Result<ClusterMessage, Error> {
    ClusterMessage::from_value(&msgpack::decode(payload)?)
}

/// At most this many `XRANGE` pages per restore, as Node
/// (`RESTORE_SESSION_MAX_XRANGE_CALLS`): a stream written faster than it is
/// read cannot keep a restore going forever.
pub const MAX_RESTORE_PAGES: usize = 100;

/// The fields of one stream entry, in the order the Node adapter writes
/// them.
pub type Fields = Vec<(String, String)>;

/// A stream entry id, `<ms>-<seq>`: a broadcast's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// Reads an id as Node accepts an offset (`^[0-9]+-[0-9]+$`); `None`
    /// for anything else (the in-memory log's offsets among them), which
    /// makes a fresh session.
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The id right after this one: the exclusive start of the next
    /// `XRANGE` page (exclusive ranges need Redis 6.2; Node does this).
    pub fn next(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The stream entry of `message`, as the Node adapter's `encode` writes it.
pub fn encode_entry(message: &ClusterMessage) -> Fields {
    let mut fields = vec![
        ("uid".to_owned(), message.uid.clone()),
        ("nsp".to_owned(), message.nsp.clone()),
        (
            "type".to_owned(),
            message.body.message_type().id().to_string(),
        ),
    ];
    if let Some(data) = message.body.data() {
        let text = match message.format() {
            Format::Msgpack => BASE64.encode(msgpack::encode(&data)),
            // `to_json` writes UTF-8 only.
            Format::Json => String::from_utf8_lossy(&msgpack::to_json(&data)).into_owned(),
        };
        fields.push(("data".to_owned(), text));
    }
    fields
}

/// The namespace a stream entry is for (its `nsp` field), which picks the
/// node that reads it; `None` for an entry that is not the adapter's.
pub fn entry_namespace<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> Option<&str> {
    entry_field(fields, "nsp").filter(|n| !n.is_empty())
}

fn entry_field<'a, K: AsRef<str>, V: AsRef<str>>(
    fields: &'a [(K, V)],
    name: &str,
) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.as_ref() == name)
        .map(|(_, v)| v.as_ref())
}

/// The message of a stream entry. Entries without `nsp` are not the
/// adapter's (Node skips them): [`Error::Field`].
pub fn decode_entry<K: AsRef<str>, V: AsRef<str>>(
    fields: &[(K, V)],
) -> Result<ClusterMessage, Error> {
    let field = |name: &'static str| entry_field(fields, name);
    let uid = field("uid").ok_or(Error::Field("uid"))?;
    let nsp = entry_namespace(fields).ok_or(Error::Field("nsp"))?;
    // `parseInt`: leading digits.
    let ty = field("type")
        .map(|t| t.trim_start())
        .and_then(|t| {
            let end = t.bytes().take_while(u8::is_ascii_digit).count();
            t.get(..end)?.parse::<u64>().ok()
        })
        .ok_or(Error::Field("type"))?;
    let data = match field("data").filter(|d| !d.is_empty()) {
        None => Value::Null,
        Some(d) if d.starts_with('{') => msgpack::from_json(d.as_bytes())?,
        Some(d) => {
            let bytes = BASE64
                .decode(d)
                .map_err(|_| Error::Msgpack("data is neither JSON nor base64"))?;
            msgpack::decode(&bytes)?
        }
    };
    Ok(ClusterMessage {
        uid: uid.to_owned(),
        nsp: nsp.to_owned(),
        body: ClusterBody::from_data(ty, &data)?,
    })
}

/// A session as the adapter's `persistSession` stores it: base64 of
/// MessagePack `{sid, pid, rooms, data}`.
pub fn encode_session(session: &Session) -> String {
    let value = Value::Object(vec![
        ("sid".to_owned(), Value::String(session.sid.clone())),
        ("pid".to_owned(), Value::String(session.pid.clone())),
        ("rooms".to_owned(), strings(&session.rooms)),
        ("data".to_owned(), session.data.clone()),
    ]);
    BASE64.encode(msgpack::encode(&value))
}

/// Reads a stored session back (what another node, Node or duplex, wrote).
pub fn decode_session(text: &str) -> Result<Session, Error> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|_| Error::Msgpack("session is not base64"))?;
    let value = msgpack::decode(&bytes)?;
    Ok(Session {
        sid: super::message::string_field(&value, "sid")?,
        pid: super::message::string_field(&value, "pid")?,
        rooms: super::message::rooms_field(&value, "rooms")?,
        data: value.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// Whether a broadcast with `opts` was addressed to a socket in `rooms`
/// (its own id among them): the adapter's `shouldIncludePacket`.
pub fn should_include(rooms: &[String], opts: &Opts) -> bool {
    let included = opts.rooms.is_empty() || rooms.iter().any(|r| opts.rooms.contains(r));
    let excluded = rooms.iter().any(|r| opts.except.contains(r));
    included && !excluded
}

/// Whether a broadcast gets an offset appended (the adapter's
/// `addOffsetIfNecessary`, with recovery on): an EVENT without an ack id
/// and without the `volatile` flag.
pub fn takes_offset(body: &ClusterBody) -> bool {
    match body {
        ClusterBody::Broadcast {
            packet,
            request_id: None,
            opts,
        } => packet_takes_offset(packet, opts),
        _ => false,
    }
}

/// Whether a broadcast of `packet` with `opts` is stored with an offset:
/// an EVENT without an ack id that is not volatile (Node's rule).
pub(crate) fn packet_takes_offset(packet: &WirePacket, opts: &Opts) -> bool {
    packet.packet_type == 2 && packet.id.is_none() && opts.flag("volatile").is_none()
}

/// One missed event of a restore: `[event, ...args, "<entry id>"]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Missed {
    /// The entry id (the event's offset).
    pub id: StreamId,
    /// The event name, its arguments, then the offset.
    pub data: Vec<Value>,
}

/// A session taken from Redis and the events it missed, in stream order.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteSession {
    /// The session as it was persisted.
    pub session: Session,
    /// The broadcasts after the client's offset that its rooms select.
    pub missed: Vec<Missed>,
    /// The last entry id the restore read (the client's offset when
    /// nothing came after it): live entries up to it are in `missed`
    /// already, or were not for this session.
    pub read_to: StreamId,
}

/// What a [`RestoreQuery`] wants run next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreStep {
    /// `MULTI; GET key; DEL key; EXEC` and `XRANGE stream id id` (Node runs
    /// both at once): answer with [`RestoreQuery::handle_first`].
    First {
        /// The session key.
        key: String,
        /// The client's offset, as the start and end of the range.
        offset: StreamId,
    },
    /// `XRANGE stream <start> +` (`COUNT` at the IO layer's choice):
    /// answer with [`RestoreQuery::handle_page`].
    Page {
        /// The first id of the page.
        start: StreamId,
    },
    /// Done: take [`RestoreQuery::finish`].
    Done,
}

/// One restore (the adapter's `restoreSession`) as a machine: the IO layer
/// runs [`RestoreQuery::step`], feeds the replies, and takes the result.
/// Ends in `None` (a fresh session) when the session key or the offset's
/// entry is gone, or a reply is malformed.
#[derive(Clone, Debug)]
pub struct RestoreQuery {
    nsp: String,
    key: String,
    offset: StreamId,
    session: Option<Session>,
    missed: Vec<Missed>,
    read_to: StreamId,
    pages: usize,
    step: RestoreStep,
}

impl RestoreQuery {
    /// A restore of `pid` from `offset` for namespace `nsp`; `None` when
    /// the offset is not a stream id (Node refuses it: "invalid offset").
    pub fn new(nsp: &str, key_prefix: &str, pid: &str, offset: &str) -> Option<Self> {
        let offset = StreamId::parse(offset)?;
        let key = format!("{key_prefix}{pid}");
        Some(Self {
            nsp: nsp.to_owned(),
            step: RestoreStep::First {
                key: key.clone(),
                offset,
            },
            key,
            offset,
            session: None,
            missed: Vec::new(),
            read_to: offset,
            pages: 0,
        })
    }

    /// What to run next.
    pub fn step(&self) -> &RestoreStep {
        &self.step
    }

    /// The session key (`<prefix><pid>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The replies to [`RestoreStep::First`]: the value `GET` returned
    /// before the `DEL`, and whether `XRANGE offset offset` found the entry.
    pub fn handle_first(&mut self, stored: Option<&str>, offset_exists: bool) {
        self.session = match stored {
            Some(text) if offset_exists => decode_session(text).ok(),
            _ => None,
        };
        self.step = if self.session.is_some() {
            RestoreStep::Page {
                start: self.offset.next(),
            }
        } else {
            RestoreStep::Done
        };
    }

    /// The entries of a [`RestoreStep::Page`] (id text and fields, in
    /// stream order). An empty page ends the restore, and so does the
    /// page limit.
    pub fn handle_page<I, K, V>(&mut self, entries: I)
    where
        I: IntoIterator<Item = (String, Vec<(K, V)>)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let RestoreStep::Page { .. } = self.step else {
            return;
        };
        let Some(rooms) = self.session.as_ref().map(|s| s.rooms.clone()) else {
            self.step = RestoreStep::Done;
            return;
        };
        self.pages += 1;
        let mut any = false;
        for (id, fields) in entries {
            let Some(id) = StreamId::parse(&id) else {
                continue;
            };
            if id <= self.read_to {
                continue;
            }
            any = true;
            self.read_to = id;
            let is_broadcast = fields
                .iter()
                .any(|(k, v)| k.as_ref() == "type" && v.as_ref() == "3");
            let this_nsp = fields
                .iter()
                .any(|(k, v)| k.as_ref() == "nsp" && v.as_ref() == self.nsp);
            if !(is_broadcast && this_nsp) {
                continue;
            }
            let Ok(message) = decode_entry(&fields) else {
                continue;
            };
            if let Some(missed) = missed_of(&rooms, id, message.body) {
                self.missed.push(missed);
            }
        }
        self.step = if any && self.pages < MAX_RESTORE_PAGES {
            RestoreStep::Page {
                start: self.read_to.next(),
            }
        } else {
            RestoreStep::Done
        };
    }

    /// The session and what it missed, or `None` for a fresh session.
    pub fn finish(self) -> Option<RemoteSession> {
        Some(RemoteSession {
            session: self.session?,
            missed: self.missed,
            read_to: self.read_to,
        })
    }
}

/// The replay of one broadcast entry to a session in `rooms`, with the
/// entry id appended; `None` when it is not for the session. Unlike Node's
/// restore, broadcasts with an ack id or `volatile` are skipped: they
/// were never offset, so they are not the session's to replay.
pub fn missed_of(rooms: &[String], id: StreamId, body: ClusterBody) -> Option<Missed> {
    if !takes_offset(&body) {
        return None;
    }
    let ClusterBody::Broadcast { packet, opts, .. } = body else {
        return None;
    };
    if !should_include(rooms, &opts) {
        return None;
    }
    let mut data = packet.data;
    data.push(Value::String(id.to_string()));
    Some(Missed { id, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::WirePacket;

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    fn broadcast(args: Vec<Value>, opts: Opts) -> ClusterMessage {
        ClusterMessage {
            uid: "node-a".into(),
            nsp: "/".into(),
            body: ClusterBody::Broadcast {
                packet: WirePacket::event("ev", args),
                request_id: None,
                opts,
            },
        }
    }

    #[test]
    fn stream_ids() {
        assert_eq!(
            StreamId::parse("1700000000000-3"),
            Some(StreamId {
                ms: 1_700_000_000_000,
                seq: 3
            })
        );
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "OlFvMW0.3",
            "1 -2",
            "a-1",
            "1-+2",
        ] {
            assert_eq!(StreamId::parse(bad), None, "{bad}");
        }
        assert_eq!(
            StreamId::parse("5-9")
                .map(StreamId::next)
                .map(|i| i.to_string()),
            Some("5-10".into())
        );
        let max = StreamId {
            ms: 1,
            seq: u64::MAX,
        };
        assert_eq!(max.next(), StreamId { ms: 2, seq: 0 });
    }

    #[test]
    fn entry_json_as_node_writes_it() {
        let message = broadcast(
            vec![s("hello"), Value::Number(1.into())],
            Opts::rooms(["r1"]),
        );
        let fields = encode_entry(&message);
        assert_eq!(
            fields,
            vec![
                ("uid".to_owned(), "node-a".to_owned()),
                ("nsp".to_owned(), "/".to_owned()),
                ("type".to_owned(), "3".to_owned()),
                (
                    "data".to_owned(),
                    r#"{"packet":{"type":2,"data":["ev","hello",1]},"opts":{"rooms":["r1"],"except":[]}}"#
                        .to_owned()
                ),
            ]
        );
        assert_eq!(decode_entry(&fields).ok(), Some(message));
    }

    #[test]
    fn entry_binary_is_base64_msgpack() {
        // What @msgpack/msgpack 2.8 writes for this broadcast's data (npm,
        // `Buffer.from(encode(data)).toString("base64")`).
        let node = "gqZwYWNrZXSDpHR5cGUCpGRhdGGTo2JpbsQDAQIDoXijbnNwoS+kb3B0c4Olcm9vbXORoXKmZXhjZXB0kKVmbGFnc4A=";
        let fields = [("uid", "n"), ("nsp", "/"), ("type", "3"), ("data", node)];
        let message = decode_entry(&fields).expect("decodes");
        let ClusterBody::Broadcast { packet, opts, .. } = &message.body else {
            panic!("not a broadcast: {message:?}");
        };
        assert_eq!(
            packet.data,
            vec![
                s("bin"),
                Value::Binary(bytes::Bytes::from_static(&[1, 2, 3])),
                s("x")
            ]
        );
        assert_eq!(opts.rooms, vec!["r".to_owned()]);
        let again = encode_entry(&message);
        assert_eq!(again.get(3).map(|(_, v)| v.as_str()), Some(node));
    }

    #[test]
    fn entry_namespace_is_the_nsp_field_when_set() {
        assert_eq!(
            entry_namespace(&[("uid", "n"), ("nsp", "/chat")]),
            Some("/chat")
        );
        assert_eq!(entry_namespace(&[("uid", "n"), ("nsp", "")]), None);
        assert_eq!(entry_namespace(&[("uid", "n"), ("type", "3")]), None);
    }

    #[test]
    fn entry_without_data_and_bad_entries() {
        let heartbeat = ClusterMessage {
            uid: "u".into(),
            nsp: "/".into(),
            body: ClusterBody::Heartbeat,
        };
        let fields = encode_entry(&heartbeat);
        assert_eq!(fields.len(), 3);
        assert_eq!(decode_entry(&fields).ok(), Some(heartbeat));
        assert!(decode_entry(&[("uid", "u"), ("type", "2")]).is_err());
        assert!(decode_entry(&[("uid", "u"), ("nsp", "/"), ("type", "x")]).is_err());
        assert!(
            decode_entry(&[("uid", "u"), ("nsp", "/"), ("type", "3"), ("data", "!!")]).is_err()
        );
        assert!(decode_entry(&[("uid", "u"), ("nsp", "/"), ("type", "99")]).is_err());
    }

    #[test]
    fn session_bytes_are_nodes() {
        // @msgpack/msgpack 2.8 encoding of the same session, base64 (npm).
        let node = "hKNzaWS0YWJjZGVmZ2hpamtsbW5vcHFyc3SjcGlktFBQUFBQUFBQUFBQUFBQUFBQUFBQpXJvb21zkrRhYmNkZWZnaGlqa2xtbm9wcXJzdKVyb29tMaRkYXRhiKFuAaRuYW1loXihZss/+AAAAAAAAKNuZWf9o2JpZ84AARFwo25pbMChdMOjYXJykgGhYQ==";
        let session = decode_session(node).expect("decodes");
        assert_eq!(session.sid, "abcdefghijklmnopqrst");
        assert_eq!(session.pid, "PPPPPPPPPPPPPPPPPPPP");
        assert_eq!(
            session.rooms,
            vec!["abcdefghijklmnopqrst".to_owned(), "room1".to_owned()]
        );
        assert_eq!(session.data.get("name"), Some(&s("x")));
        assert_eq!(encode_session(&session), node);
        assert!(decode_session("not base64!").is_err());
        assert!(decode_session(&BASE64.encode([0x80])).is_err());
    }

    #[test]
    fn should_include_is_nodes() {
        let rooms = vec!["sid1".to_owned(), "room1".to_owned()];
        assert!(should_include(&rooms, &Opts::default()));
        assert!(should_include(&rooms, &Opts::rooms(["room1"])));
        assert!(should_include(&rooms, &Opts::rooms(["sid1"])));
        assert!(!should_include(&rooms, &Opts::rooms(["room2"])));
        assert!(!should_include(&rooms, &Opts::default().except(["room1"])));
        assert!(!should_include(
            &rooms,
            &Opts::rooms(["room1"]).except(["sid1"])
        ));
    }

    fn entry(id: &str, message: &ClusterMessage) -> (String, Fields) {
        (id.to_owned(), encode_entry(message))
    }

    /// A stored session of pid `p` with no data.
    fn session(sid: &str, rooms: &[&str]) -> Session {
        Session {
            sid: sid.into(),
            pid: "p".into(),
            rooms: rooms.iter().map(|&r| r.to_owned()).collect(),
            data: Value::Null,
        }
    }

    #[test]
    fn restore_filters_and_offsets() {
        let session = session("sid1", &["sid1", "room1"]);
        let mut q = RestoreQuery::new("/", DEFAULT_SESSION_KEY_PREFIX, "p", "10-0").expect("id");
        assert_eq!(
            q.step(),
            &RestoreStep::First {
                key: "sio:session:p".into(),
                offset: StreamId { ms: 10, seq: 0 }
            }
        );
        q.handle_first(Some(&encode_session(&session)), true);
        assert_eq!(
            q.step(),
            &RestoreStep::Page {
                start: StreamId { ms: 10, seq: 1 }
            }
        );
        let mut other_nsp = broadcast(vec![s("x")], Opts::default());
        other_nsp.nsp = "/foo".into();
        let volatile = {
            let o = Opts {
                flags: Some(Value::Object(vec![("volatile".into(), Value::Bool(true))])),
                ..Opts::default()
            };
            broadcast(vec![s("v")], o)
        };
        let page = vec![
            entry("11-0", &broadcast(vec![s("direct")], Opts::rooms(["sid1"]))),
            entry("12-0", &broadcast(vec![s("all")], Opts::default())),
            entry("12-1", &broadcast(vec![s("room2")], Opts::rooms(["room2"]))),
            entry(
                "13-0",
                &broadcast(vec![s("except")], Opts::default().except(["room1"])),
            ),
            entry("14-0", &other_nsp),
            entry("15-0", &volatile),
            (
                "16-0".to_owned(),
                vec![
                    ("uid".to_owned(), "n".to_owned()),
                    ("nsp".to_owned(), "/".to_owned()),
                    ("type".to_owned(), "2".to_owned()),
                ],
            ),
            entry("17-0", &broadcast(vec![s("room1")], Opts::rooms(["room1"]))),
        ];
        q.handle_page(page);
        assert_eq!(
            q.step(),
            &RestoreStep::Page {
                start: StreamId { ms: 17, seq: 1 }
            }
        );
        q.handle_page(Vec::<(String, Fields)>::new());
        assert_eq!(q.step(), &RestoreStep::Done);
        let r = q.finish().expect("restored");
        let got: Vec<Vec<Value>> = r.missed.into_iter().map(|m| m.data).collect();
        assert_eq!(
            got,
            vec![
                vec![s("ev"), s("direct"), s("11-0")],
                vec![s("ev"), s("all"), s("12-0")],
                vec![s("ev"), s("room1"), s("17-0")],
            ]
        );
        assert_eq!(r.read_to, StreamId { ms: 17, seq: 0 });
        assert_eq!(r.session, session);
    }

    #[test]
    fn restore_refusals() {
        assert!(RestoreQuery::new("/", "k:", "p", "OlFvMW0.3").is_none());
        let mut q = RestoreQuery::new("/", "k:", "p", "1-0").expect("id");
        q.handle_first(None, true);
        assert_eq!(q.step(), &RestoreStep::Done);
        assert!(q.finish().is_none());
        let session = session("s", &["s"]);
        let mut q = RestoreQuery::new("/", "k:", "p", "1-0").expect("id");
        q.handle_first(Some(&encode_session(&session)), false);
        assert!(q.finish().is_none());
        let mut q = RestoreQuery::new("/", "k:", "p", "1-0").expect("id");
        q.handle_first(Some("garbage"), true);
        assert!(q.finish().is_none());
    }

    #[test]
    fn restore_stops_after_the_page_limit() {
        let session = session("s", &["s"]);
        let mut q = RestoreQuery::new("/", "k:", "p", "1-0").expect("id");
        q.handle_first(Some(&encode_session(&session)), true);
        let mut ms = 2;
        while let RestoreStep::Page { .. } = q.step() {
            q.handle_page(vec![entry(
                &format!("{ms}-0"),
                &broadcast(vec![], Opts::default()),
            )]);
            ms += 1;
        }
        assert_eq!(q.finish().map(|r| r.missed.len()), Some(MAX_RESTORE_PAGES));
    }
}
