//! Limits and behaviour switches, with safe defaults.

use std::time::Duration;

use rand::{RngCore, SeedableRng, rngs::StdRng};

/// Settings for a [`crate::Connection`].
pub struct Config {
    /// The largest frame payload accepted (1009 beyond). Default 16 MiB.
    pub max_frame_size: usize,
    /// The largest message accepted, all fragments together (1009 beyond).
    /// Default 64 MiB.
    pub max_message_size: usize,
    /// Answer every ping with a pong automatically. Default on.
    pub auto_pong: bool,
    /// Assemble fragments into whole messages (`Event::Message`); when off,
    /// every data frame is handed out as `Event::Fragment`. Default on.
    pub assemble_messages: bool,
    /// Split outgoing messages into frames of at most this many payload
    /// bytes. Default `None`: one frame per message.
    pub max_outgoing_frame_size: Option<usize>,
    /// A server keeps the payload of a message sent as [`bytes::Bytes`]
    /// uncopied (its own slice in a vectored write) from this many bytes
    /// up; shorter ones are copied next to their header, which up to about
    /// 4 KiB costs less than one more slice for the kernel to gather.
    /// Clients mask, so they always copy. `usize::MAX` copies everything.
    /// Default 4096 (measured: `docs/benchmarks.md`, "Sending without
    /// copying").
    pub min_shared_payload: usize,
    /// How long to wait, once this side has sent its close frame, for the
    /// peer's close frame (and, for a client, for the server to close TCP).
    /// Default 5 s.
    pub close_timeout: Duration,
    /// The source of client masking keys. Default: seeded from the OS on
    /// first use.
    pub rng: Box<dyn RngCore + Send>,
}

impl Config {
    /// Replaces the random source, e.g. with a seeded one in tests.
    pub fn with_rng(mut self, rng: impl RngCore + Send + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            auto_pong: true,
            assemble_messages: true,
            max_outgoing_frame_size: None,
            min_shared_payload: 4096,
            close_timeout: Duration::from_secs(5),
            rng: Box::new(LazyOsRng(None)),
        }
    }
}

/// `StdRng` seeded from the OS on first use. A server never masks, so it
/// never pays for the seeding syscall or the generator's 320 bytes.
struct LazyOsRng(Option<Box<StdRng>>);

impl LazyOsRng {
    fn get(&mut self) -> &mut StdRng {
        self.0
            .get_or_insert_with(|| Box::new(StdRng::from_os_rng()))
    }
}

impl RngCore for LazyOsRng {
    fn next_u32(&mut self) -> u32 {
        self.get().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.get().next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.get().fill_bytes(dest);
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("auto_pong", &self.auto_pong)
            .field("assemble_messages", &self.assemble_messages)
            .field("max_outgoing_frame_size", &self.max_outgoing_frame_size)
            .field("min_shared_payload", &self.min_shared_payload)
            .field("close_timeout", &self.close_timeout)
            .finish_non_exhaustive()
    }
}
