//! `--cors-origin`: one cross-origin policy for the HTTP endpoints that
//! browsers reach with XHR/fetch (Socket.IO, SockJS, Server-Sent Events),
//! chosen on the command line and read by each endpoint's config.

use std::sync::OnceLock;

use duplex_tokio::Cors;

/// The policy of this run; unset: each endpoint keeps its own default.
static POLICY: OnceLock<Cors> = OnceLock::new();

/// The policy for the `--cors-origin` values: `*` (anywhere in the list)
/// allows any origin, other values allow exactly those origins (a request
/// from another gets 403); both send CORS headers and answer preflights,
/// echoing the Origin with credentials allowed. No value: `default`.
pub(crate) fn policy(origins: &[String], default: Option<Cors>) -> Option<Cors> {
    if origins.is_empty() {
        return default;
    }
    if origins.iter().any(|o| o == "*") {
        return Some(Cors::permissive());
    }
    Some(Cors {
        enabled: true,
        allowed_origins: Some(origins.to_vec()),
    })
}

/// Sets this run's policy; call once, before any endpoint is built.
pub(crate) fn init(policy: Option<Cors>) {
    if let Some(policy) = policy {
        let _ = POLICY.set(policy);
    }
}

/// Replaces an endpoint config's `cors` with this run's policy, if one was
/// chosen.
pub(crate) fn apply(cors: &mut Cors) {
    if let Some(policy) = POLICY.get() {
        cors.clone_from(policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_become_a_policy() {
        assert_eq!(policy(&[], None), None);
        assert_eq!(
            policy(&[], Some(Cors::permissive())),
            Some(Cors::permissive())
        );
        let star = ["https://a.example".to_owned(), "*".to_owned()];
        assert_eq!(policy(&star, None), Some(Cors::permissive()));
        let listed = ["https://a.example".to_owned()];
        assert_eq!(
            policy(&listed, Some(Cors::permissive())),
            Some(Cors {
                enabled: true,
                allowed_origins: Some(vec!["https://a.example".into()]),
            })
        );
    }
}
