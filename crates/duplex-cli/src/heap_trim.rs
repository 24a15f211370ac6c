//! Giving freed heap pages back to the operating system.
//!
//! glibc's allocator keeps the pages of freed memory for reuse: after 5,000
//! abandoned SockJS sessions expired, the server's RSS stayed 44 MiB above
//! its baseline although nothing leaked (a second flood reused the memory,
//! and `malloc_trim(0)` from a debugger brought RSS back to within 4 MiB).
//! docs/reliability.md has the measurements, including the allocators tried
//! instead (jemalloc, mimalloc), which kept more. So the long-running
//! servers ask glibc to trim every few seconds; on other platforms this is
//! a no-op.
//!
//! The one `unsafe` block of the binary is here, alone in its module.

use std::time::Duration;

/// How often the servers trim: within the 15 s in which the hostile-client
/// suite expects RSS back, and rare enough to cost nothing measurable
/// (one walk of the allocator's free lists).
pub(crate) const PERIOD: Duration = Duration::from_secs(5);

/// Trims the heap every `period`, for as long as the runtime runs.
pub(crate) fn spawn(period: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            trim();
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim has no preconditions: it takes each arena's own
    // lock, returns free pages at the top of the heap and madvises free
    // whole pages inside it; no pointer of ours is read or written.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
