//! Protocol versions and their negotiation.

use std::fmt;

/// A STOMP protocol version. Ordered: `V1_0 < V1_1 < V1_2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping, no `NACK`, no heart-beats.
    V1_0,
    /// STOMP 1.1: escapes `\n` `\c` `\\`; heart-beats; `NACK`; `ACK` by
    /// `message-id` and `subscription`.
    V1_1,
    /// STOMP 1.2: adds the `\r` escape, CRLF line ends, and `ACK` by the
    /// message's `ack` header.
    V1_2,
}

impl Version {
    /// Every version this crate speaks, lowest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as written in `accept-version` and `version` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses `1.0`, `1.1` or `1.2`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Version> {
        match text {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }

    /// The WebSocket subprotocol that carries this version
    /// (`v10.stomp`, `v11.stomp`, `v12.stomp`).
    pub fn websocket_subprotocol(self) -> &'static str {
        match self {
            Version::V1_0 => "v10.stomp",
            Version::V1_1 => "v11.stomp",
            Version::V1_2 => "v12.stomp",
        }
    }

    /// The version named by a WebSocket subprotocol, if it is a STOMP one.
    pub fn from_websocket_subprotocol(name: &str) -> Option<Version> {
        Version::ALL
            .into_iter()
            .find(|v| v.websocket_subprotocol() == name)
    }

    /// The version a server agrees to among the WebSocket subprotocols a
    /// client offered: the first, in the client's order, that names a
    /// version in `supported` (the client lists its preference first).
    /// Names are compared without surrounding white space.
    pub fn choose_websocket_subprotocol<'a>(
        offered: impl IntoIterator<Item = &'a str>,
        supported: &[Version],
    ) -> Option<Version> {
        offered
            .into_iter()
            .filter_map(|p| Version::from_websocket_subprotocol(p.trim()))
            .find(|v| supported.contains(v))
    }

    /// Whether header names and values are escaped in this version (outside
    /// `CONNECT` and `CONNECTED`, which never are).
    pub fn escapes_headers(self) -> bool {
        self >= Version::V1_1
    }

    /// The highest version named in an `accept-version` header value that is
    /// also in `supported`. A missing header means the client speaks only
    /// 1.0 (pass `None`). Unknown versions in the list (`2.0`) are skipped,
    /// as the specification's negotiation example requires.
    pub fn negotiate(accept_version: Option<&str>, supported: &[Version]) -> Option<Version> {
        match accept_version {
            None => supported.contains(&Version::V1_0).then_some(Version::V1_0),
            Some(list) => list
                .split(',')
                .filter_map(|v| Version::parse(v.trim()))
                .filter(|v| supported.contains(v))
                .max(),
        }
    }

    /// The comma separated list of `versions` for an `accept-version` or an
    /// `ERROR` frame's `version` header.
    pub fn list(versions: &[Version]) -> String {
        let mut out = String::with_capacity(versions.len() * 4);
        for (i, v) in versions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(v.as_str());
        }
        out
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_specification_example() {
        // Client accepts 1.0,1.1,2.0; a 1.1 server answers 1.1.
        let server = [Version::V1_0, Version::V1_1];
        assert_eq!(
            Version::negotiate(Some("1.0,1.1,2.0"), &server),
            Some(Version::V1_1)
        );
        assert_eq!(
            Version::negotiate(Some("1.0,1.1,2.0"), &Version::ALL),
            Some(Version::V1_1)
        );
        assert_eq!(
            Version::negotiate(Some("1.2,1.0"), &Version::ALL),
            Some(Version::V1_2)
        );
        assert_eq!(Version::negotiate(None, &Version::ALL), Some(Version::V1_0));
        assert_eq!(Version::negotiate(None, &[Version::V1_2]), None);
        assert_eq!(Version::negotiate(Some("2.0,2.1"), &Version::ALL), None);
        assert_eq!(Version::list(&Version::ALL), "1.0,1.1,1.2");
        assert_eq!(
            Version::from_websocket_subprotocol("v12.stomp"),
            Some(Version::V1_2)
        );
        assert_eq!(
            Version::from_websocket_subprotocol("v10.stomp"),
            Some(Version::V1_0)
        );
        assert_eq!(Version::from_websocket_subprotocol("stomp"), None);
    }

    #[test]
    fn subprotocol_choice_follows_the_clients_order_among_supported_versions() {
        let offered = ["chat", " v11.stomp", "v12.stomp"];
        assert_eq!(
            Version::choose_websocket_subprotocol(offered, &Version::ALL),
            Some(Version::V1_1)
        );
        assert_eq!(
            Version::choose_websocket_subprotocol(offered, &[Version::V1_2]),
            Some(Version::V1_2)
        );
        assert_eq!(
            Version::choose_websocket_subprotocol(offered, &[Version::V1_0]),
            None
        );
        assert_eq!(
            Version::choose_websocket_subprotocol([], &Version::ALL),
            None
        );
    }
}
