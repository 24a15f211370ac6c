//! The reconnection policy of the reference client (its `backo2`):
//! exponential backoff with jitter, a pure function of the attempt number
//! and one random draw.

use std::time::Duration;

use rand::{Rng, RngCore};

/// Delays between reconnection attempts, named and defaulted as the
/// reference client's options.
///
/// ```
/// use std::time::Duration;
/// use duplex_socketio::client::Backoff;
///
/// let backoff = Backoff::default();
/// // The draw 0.5 is "odd" (floor(5) & 1): the base plus half a jitter.
/// assert_eq!(backoff.delay(0, 0.5), Duration::from_millis(1250));
/// // 2 s * 2^3 = 16 s, capped at 5 s.
/// assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// `reconnectionDelay`: the first delay. Default 1 s.
    pub delay: Duration,
    /// `reconnectionDelayMax`: no delay is longer. Default 5 s.
    pub delay_max: Duration,
    /// `randomizationFactor`: the jitter, 0 to 1. Default 0.5.
    pub randomization_factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(1),
            delay_max: Duration::from_secs(5),
            randomization_factor: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0-based) given a draw `random`
    /// in `[0, 1)`: `delay * 2^attempt`, moved by up to
    /// `randomization_factor` of itself (down when `floor(random * 10)` is
    /// even, up when odd, as the reference), at most `delay_max`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let jitter = if self.randomization_factor.is_finite() {
            self.randomization_factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // In milliseconds, whole ones, as the reference computes it.
        let base = self.delay.as_secs_f64() * 1000.0 * 2f64.powi(attempt.min(62) as i32);
        let deviation = (random * jitter * base).floor();
        let ms = if ((random * 10.0).floor() as u64) & 1 == 0 {
            base - deviation
        } else {
            base + deviation
        };
        let max_ms = self.delay_max.as_millis() as f64;
        let ms = ms.max(0.0).floor();
        if ms >= max_ms {
            return self.delay_max;
        }
        Duration::from_millis(ms as u64)
    }

    /// [`Backoff::delay`] with the draw taken from `rng`.
    pub fn delay_with<R: RngCore + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        self.delay(attempt, rng.random::<f64>())
    }
}

/// Whether and how often the client reconnects after losing its
/// connection (or failing to open it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reconnection {
    /// `reconnection`. Default on.
    pub enabled: bool,
    /// `reconnectionAttempts`: attempts in a row before giving up.
    /// Default `None`: no limit.
    pub attempts: Option<u32>,
    /// The delays.
    pub backoff: Backoff,
}

impl Default for Reconnection {
    fn default() -> Self {
        Self {
            enabled: true,
            attempts: None,
            backoff: Backoff::default(),
        }
    }
}

impl Reconnection {
    /// Whether attempt `attempt` (0-based: the number of failed attempts
    /// since the last successful connection) may be made.
    pub fn allows(&self, attempt: u32) -> bool {
        self.enabled && self.attempts.is_none_or(|n| attempt < n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_with_jitter_within_bounds_and_caps() {
        let b = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 0..40u32 {
            let base = 1000.0 * 2f64.powi(attempt.min(62) as i32);
            for _ in 0..200 {
                let d = b.delay_with(attempt, &mut rng).as_secs_f64() * 1000.0;
                assert!(d <= 5000.0 + 1e-6, "{attempt}: {d}");
                assert!(d >= (base * 0.5).min(5000.0) - 1e-6, "{attempt}: {d}");
                assert!(d <= base * 1.5 + 1e-6, "{attempt}: {d}");
            }
        }
    }

    #[test]
    fn the_draw_decides_direction_and_size() {
        let b = Backoff {
            delay_max: Duration::from_secs(100),
            ..Backoff::default()
        };
        assert_eq!(b.delay(0, 0.0), 1000 * MS);
        // floor(2) is even: down by 0.2 * 0.5 * 1000 ms.
        assert_eq!(b.delay(0, 0.2), 900 * MS);
        // floor(3) is odd: up by 0.3 * 0.5 * 2000 ms.
        assert_eq!(b.delay(1, 0.3), 2300 * MS);
        let none = Backoff {
            randomization_factor: 0.0,
            ..b
        };
        assert_eq!(none.delay(1, 0.9), 2000 * MS);
        assert_eq!(none.delay(4, 0.9), 16_000 * MS);
    }

    #[test]
    fn hostile_settings_do_not_panic() {
        let b = Backoff {
            delay: Duration::MAX,
            delay_max: Duration::MAX,
            randomization_factor: f64::NAN,
        };
        assert_eq!(b.delay(u32::MAX, f64::INFINITY), Duration::MAX);
        let b = Backoff {
            randomization_factor: 7.0,
            ..Backoff::default()
        };
        // A factor above 1 counts as 1: floor(1) is odd, up by 0.1 * 1000 ms.
        assert_eq!(b.delay(0, 0.1), 1100 * MS);
    }

    #[test]
    fn attempts_limit() {
        let r = Reconnection {
            attempts: Some(2),
            ..Reconnection::default()
        };
        assert!(r.allows(0) && r.allows(1) && !r.allows(2));
        assert!(Reconnection::default().allows(u32::MAX));
        let off = Reconnection {
            enabled: false,
            ..Reconnection::default()
        };
        assert!(!off.allows(0));
    }
}
