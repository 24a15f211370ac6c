//! Request and session identifiers.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// An HTTP request, named by the caller (any value unique among the
/// requests in flight, e.g. a counter).
///
/// Once a machine answers a request with [`crate::Transmit::AcceptWebSocket`],
/// the same id names that WebSocket connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A session, as the application knows it: 128 random bits from the
/// configured RNG, written as 22 URL-safe base64 characters.
///
/// For Engine.IO this is the `sid` on the wire; SockJS keeps the client's
/// own session key away from the application, as its protocol asks, and
/// Server-Sent Events put it in every event id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

/// Random bytes in a session id (128 bits).
const SESSION_ID_BYTES: usize = 16;

impl SessionId {
    /// A fresh id from `rng`.
    pub(crate) fn generate(rng: &mut dyn RngCore) -> Self {
        let mut raw = [0u8; SESSION_ID_BYTES];
        rng.fill_bytes(&mut raw);
        Self(Arc::from(URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Wraps the text of an id made elsewhere (an Engine.IO `sid` made by
    /// duplex-engineio's session machine) without copying it.
    pub(crate) fn from_shared(id: Arc<str>) -> Self {
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SessionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ids_carry_128_bits_and_differ() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = SessionId::generate(&mut rng);
        let b = SessionId::generate(&mut rng);
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a, b);
        let decoded = URL_SAFE_NO_PAD.decode(a.as_str()).unwrap();
        assert_eq!(decoded.len(), 16);
        assert!(
            a.as_str()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
