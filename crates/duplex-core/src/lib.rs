//! What every duplex crate shares, so that a value crosses a crate seam
//! without being converted: the checked UTF-8 byte type, [`Utf8Bytes`],
//! and the validators behind it; the [`SessionId`] every server machine
//! hands out; the ordered set of session [`Deadlines`] every server
//! machine keeps alike; and [`FastMap`], the hash map of their session
//! tables.
//!
//! A WebSocket text frame, an Engine.IO text packet, a Socket.IO namespace
//! and a SockJS message are all the same [`Utf8Bytes`], so text checked once
//! where it was received is handed on as it is: no copy, no second check.
//!
//! ```
//! use bytes::Bytes;
//! use duplex_core::Utf8Bytes;
//!
//! // Received bytes are checked once...
//! let text = Utf8Bytes::try_from(Bytes::from_static(b"hello world")).unwrap();
//! // ...cut without copying...
//! let word = text.slice_ref(&text[6..]);
//! assert_eq!(word, "world");
//! // ...and read as `&str` (ASCII proven a word at a time).
//! assert_eq!(word.as_str().len(), 5);
//!
//! assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
//! ```
// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
// One module allows unsafe: `utf8::ascii`, a `&str` over bytes just checked
// to be ASCII, measured in docs/benchmarks.md and tested under Miri
// (`cargo +nightly miri test -p duplex-core --lib utf8`).
#![deny(unsafe_code)]

mod deadlines;
mod decimal;
mod form;
mod id_enum;
mod session_id;
mod text;
pub mod utf8;

pub use deadlines::Deadlines;
pub use decimal::put_decimal;
pub use form::form_decode;
pub use session_id::SessionId;
pub use text::Utf8Bytes;
pub use utf8::{InvalidUtf8, Utf8Validator};

/// The map for the tables a server looks up on every packet or request
/// (sessions by id, connections by request id): foldhash rather than std's
/// SipHash, which was some 15 % of the instructions per echoed Socket.IO
/// event.
///
/// Only for keys a peer cannot choose freely, as those ids are (the servers
/// or their callers generate them; a client can only look one up, never
/// insert a key of its choosing, so it cannot build a chain of colliding
/// keys), or keys the application admits first (Socket.IO namespaces: a
/// client names one, but only those the application accepts are stored). The seed is random per map, so neither the iteration order nor
/// the collisions repeat across maps or processes.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
