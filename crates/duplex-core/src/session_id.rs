//! The session id every server machine hands out.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// A session, as the application knows it: 128 random bits from the
/// configured RNG, written as 22 URL-safe base64 characters. Cheap to clone.
///
/// For Engine.IO this is the `sid` on the wire; SockJS keeps the client's
/// own session key away from the application, as its protocol asks, and
/// Server-Sent Events put it in every event id. Being one type, an id made
/// by the Engine.IO session machine is handed to the polling dialect and on
/// to the application as it is, without copying or wrapping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

/// Random bytes in a session id (128 bits).
const SESSION_ID_BYTES: usize = 16;

impl SessionId {
    /// A fresh id from `rng`.
    pub fn generate(rng: &mut dyn RngCore) -> Self {
        let mut raw = [0u8; SESSION_ID_BYTES];
        rng.fill_bytes(&mut raw);
        Self(Arc::from(URL_SAFE_NO_PAD.encode(raw)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared text, so that a layer above can wrap the same allocation
    /// in an id type of its own without copying.
    pub fn to_shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl From<&str> for SessionId {
    fn from(id: &str) -> Self {
        Self(Arc::from(id))
    }
}

impl From<SessionId> for Arc<str> {
    fn from(id: SessionId) -> Self {
        id.0
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
        assert_eq!(URL_SAFE_NO_PAD.decode(a.as_str()).unwrap().len(), 16);
        assert!(
            a.as_str()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn shared_text_round_trips_without_copying() {
        let a = SessionId::from("abc");
        let shared = a.to_shared();
        assert!(Arc::ptr_eq(&shared, &Arc::<str>::from(a.clone())));
        assert_eq!(format!("{a} {a:?}"), "abc SessionId(abc)");
    }
}
