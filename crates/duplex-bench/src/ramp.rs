//! Idle connections at scale: opens up to N WebSocket connections over
//! loopback, a bounded number of handshakes at a time, reporting the
//! server's RSS and the kernel's socket memory as it goes, and stops
//! ramping at the target, at the first errors, or when the machine's
//! available memory falls to a floor (so that a run never gets anything
//! OOM-killed).
//!
//! One client address has ~28k ephemeral ports (64k at most), so a million
//! connections to one server port need many source addresses: each socket
//! binds an explicit (address, port) from 127.0.0.2 upwards before it
//! connects. Explicit ports, rather than port 0, keep the kernel from
//! searching its bind table for a free port on every connect, and make the
//! (address, port) of connection k a pure function of k, so several client
//! processes ([`Shard`]s) never collide.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

use crate::loadgen::{self, Target};
use crate::procstat::{self, MemInfo, SlabCache, TcpSockstat};

/// This process's part of a run split across `count` client processes
/// (`index/count`, from `0/1`): it takes every `count`-th source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl Shard {
    /// The whole run in one process.
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    /// Parses `i/n` with `i < n`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("bad shard {text:?}: expected i/n with i < n");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// 127.0.0.1 is left to the server and to everything else on the machine.
const FIRST_SOURCE: u32 = u32::from_be_bytes([127, 0, 0, 2]);
const LAST_SOURCE: u32 = u32::from_be_bytes([127, 255, 255, 254]);

/// The (address, port) each connection binds before connecting.
#[derive(Debug, Clone)]
pub struct Sources {
    addrs: Vec<Ipv4Addr>,
    port_lo: u16,
    ports: u64,
}

impl Sources {
    /// `count` loopback addresses from 127.0.0.2 upwards, of which `shard`
    /// takes every `shard.count`-th, each with the ports of `ports`.
    /// Connection k uses address k mod A and port lo + k div A, so that
    /// consecutive connections spread over the addresses.
    pub fn new(count: u32, shard: Shard, ports: RangeInclusive<u16>) -> Result<Self, String> {
        if count > LAST_SOURCE - FIRST_SOURCE + 1 {
            return Err(format!(
                "{count} source addresses do not fit in 127.0.0.0/8"
            ));
        }
        if count < shard.count {
            return Err(format!(
                "{count} source addresses cannot be split into {} shards",
                shard.count
            ));
        }
        if ports.is_empty() || *ports.start() == 0 {
            return Err(format!("empty or zero source port range {ports:?}"));
        }
        let addrs = (0..count)
            .filter(|i| i % shard.count == shard.index)
            .map(|i| Ipv4Addr::from(FIRST_SOURCE + i))
            .collect();
        Ok(Self {
            addrs,
            port_lo: *ports.start(),
            ports: u64::from(*ports.end() - *ports.start()) + 1,
        })
    }

    /// The source addresses this process uses.
    pub fn addrs(&self) -> &[Ipv4Addr] {
        &self.addrs
    }

    /// How many distinct (address, port) pairs there are.
    pub fn capacity(&self) -> u64 {
        self.addrs.len() as u64 * self.ports
    }

    /// The source of connection `k`, or `None` past the capacity.
    pub fn get(&self, k: u64) -> Option<SocketAddr> {
        let n = self.addrs.len() as u64;
        let addr = *self.addrs.get(usize::try_from(k.checked_rem(n)?).ok()?)?;
        let slot = k / n;
        if slot >= self.ports {
            return None;
        }
        let port = u16::try_from(u64::from(self.port_lo) + slot).ok()?;
        Some(SocketAddr::V4(SocketAddrV4::new(addr, port)))
    }
}

/// How a ramp goes.
#[derive(Debug, Clone)]
pub struct RampConfig {
    /// The server.
    pub target: Target,
    /// Connections to open and hold (this process's share).
    pub connections: u64,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Explicit source addresses; `None` lets the kernel pick a port on
    /// 127.0.0.1 (enough for ~28k connections).
    pub sources: Option<Sources>,
    /// The server's pid, to read its RSS.
    pub server_pid: Option<u32>,
    /// A progress snapshot every this many connections (0: none).
    pub report_every: u64,
    /// Stop ramping when `MemAvailable` falls below this many KiB.
    pub min_available_kib: u64,
    /// One connect plus handshake must finish within this.
    pub connect_timeout: Duration,
    /// The whole ramp must finish within this.
    pub ramp_timeout: Duration,
    /// Stop ramping after more failed connections than this.
    pub max_errors: u64,
    /// Skip at most this many source pairs already taken (another
    /// process's listener on the port, or a TIME_WAIT left by a previous
    /// run) before giving up.
    pub max_conflicts: u64,
    /// How long to hold the connections before the final measurement.
    pub hold: Duration,
    /// End the hold early once this file exists: a harness running several
    /// client processes releases them together, after it has measured the
    /// machine with every connection held.
    pub release: Option<PathBuf>,
    /// After the hold, echo one message on this many connections spread
    /// over the held ones, to show the server still serves them.
    pub verify: usize,
}

/// The machine's state at one point of a ramp.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Connections held.
    pub connections: u64,
    /// Since the ramp started.
    pub elapsed: Duration,
    /// The server's resident set.
    pub server_rss_kib: Option<u64>,
    /// This process's resident set.
    pub client_rss_kib: Option<u64>,
    /// Available memory and slab totals.
    pub mem: Option<MemInfo>,
    /// The kernel's TCP socket counts and buffer pages.
    pub tcp: Option<TcpSockstat>,
    /// Every slab cache (empty without root).
    pub slabs: Vec<SlabCache>,
    /// Connections conntrack tracks, if it is loaded.
    pub conntrack: Option<u64>,
}

impl Snapshot {
    /// Reads everything now.
    pub fn take(connections: u64, elapsed: Duration, server_pid: Option<u32>) -> Self {
        Self {
            connections,
            elapsed,
            server_rss_kib: server_pid.and_then(procstat::rss_kib),
            client_rss_kib: procstat::rss_kib(std::process::id()),
            mem: procstat::meminfo(),
            tcp: procstat::sockstat(),
            slabs: procstat::slabinfo().unwrap_or_default(),
            conntrack: procstat::conntrack_count(),
        }
    }

    /// The bytes held by the named slab cache.
    pub fn slab_bytes(&self, name: &str) -> Option<u64> {
        self.slabs.iter().find(|c| c.name == name).map(|c| c.bytes)
    }
}

/// Which point of a run a snapshot is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Another `report_every` connections are held.
    Step,
    /// The ramp has ended (the hold begins).
    Ramped,
}

/// Why the ramp stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Every connection asked for is held.
    Reached,
    /// `MemAvailable` fell below the floor.
    MemoryFloor {
        /// What was left, in KiB.
        available_kib: u64,
    },
    /// More connections failed than allowed.
    Errors,
    /// Every source (address, port) pair was used.
    SourcesExhausted,
    /// Too many source pairs were already taken.
    Conflicts,
    /// The ramp ran out of time.
    Timeout,
}

/// What a ramp measured.
#[derive(Debug, Clone)]
pub struct RampReport {
    /// Why it stopped ramping.
    pub stop: Stop,
    /// Before the first connection.
    pub baseline: Snapshot,
    /// When the last connection of the ramp completed.
    pub ramped: Snapshot,
    /// After the hold.
    pub held: Snapshot,
    /// Connections that failed (not counting source conflicts).
    pub errors: u64,
    /// The first failure, as the client saw it.
    pub first_error: Option<String>,
    /// Source pairs skipped because they were taken.
    pub conflicts: u64,
    /// (echoed, tried) of the after-hold check.
    pub verified: (usize, usize),
    /// How long closing every connection took.
    pub closed_in: Duration,
}

impl RampReport {
    /// Completed handshakes per second over the ramp.
    pub fn handshakes_per_sec(&self) -> f64 {
        self.ramped.connections as f64 / self.ramped.elapsed.as_secs_f64().max(1e-9)
    }

    /// The server's RSS growth per held connection after the hold, bytes.
    pub fn server_rss_per_connection(&self) -> Option<f64> {
        per_connection(
            self.baseline.server_rss_kib,
            self.held.server_rss_kib,
            self.held.connections,
        )
    }

    /// Slab growth per held connection after the hold, bytes (both ends of
    /// each loopback connection, and anything else the machine did).
    pub fn slab_per_connection(&self) -> Option<f64> {
        per_connection(
            self.baseline.mem.map(|m| m.slab_kib),
            self.held.mem.map(|m| m.slab_kib),
            self.held.connections,
        )
    }
}

/// (after - before) KiB spread over `connections`, in bytes.
pub fn per_connection(before: Option<u64>, after: Option<u64>, connections: u64) -> Option<f64> {
    let (before, after) = before.zip(after)?;
    (connections > 0).then(|| (after as f64 - before as f64) * 1024.0 / connections as f64)
}

/// A connection that did not open.
enum Fail {
    /// The source pair is taken; skip it.
    Conflict,
    /// Anything else.
    Other(String),
}

/// Connections between checks of the memory floor: /proc/meminfo is cheap
/// to read, and at ~20k handshakes/s this checks every ~50 ms.
const GUARD_EVERY: u64 = 1_000;

/// Opens connections until the target, a stop condition or the time limit,
/// calling `on_progress` with a snapshot every `report_every` connections
/// and when the ramp ends; holds them, measures, checks a sample still
/// echoes, and closes them.
pub async fn run(
    config: &RampConfig,
    mut on_progress: impl FnMut(Progress, &Snapshot),
) -> RampReport {
    let baseline = Snapshot::take(0, Duration::ZERO, config.server_pid);
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + config.ramp_timeout;
    let capacity = config.sources.as_ref().map_or(u64::MAX, Sources::capacity);
    let mut held: Vec<TcpStream> =
        Vec::with_capacity(usize::try_from(config.connections.min(capacity)).unwrap_or(0));
    let mut tasks = JoinSet::new();
    let mut next = 0u64;
    let mut errors = 0u64;
    let mut conflicts = 0u64;
    let mut first_error = None;
    let mut stop = None;
    if let Some(mem) = procstat::meminfo()
        && mem.available_kib < config.min_available_kib
    {
        stop = Some(Stop::MemoryFloor {
            available_kib: mem.available_kib,
        });
    }
    loop {
        while stop.is_none()
            && held.len() as u64 + (tasks.len() as u64) < config.connections
            && tasks.len() < config.concurrency.max(1)
        {
            let source = match &config.sources {
                None => None,
                Some(sources) => match sources.get(next) {
                    Some(s) => Some(s),
                    None => {
                        stop = Some(Stop::SourcesExhausted);
                        break;
                    }
                },
            };
            next += 1;
            tasks.spawn(open(config.target.clone(), source, config.connect_timeout));
        }
        let joined = match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(joined)) => joined,
            // Nothing in flight and nothing more to start.
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                stop.get_or_insert(Stop::Timeout);
                break;
            }
        };
        match joined {
            Ok(Ok(tcp)) => {
                held.push(tcp);
                let n = held.len() as u64;
                if n.is_multiple_of(GUARD_EVERY)
                    && let Some(mem) = procstat::meminfo()
                    && mem.available_kib < config.min_available_kib
                {
                    stop.get_or_insert(Stop::MemoryFloor {
                        available_kib: mem.available_kib,
                    });
                }
                if config.report_every > 0 && n.is_multiple_of(config.report_every) {
                    on_progress(
                        Progress::Step,
                        &Snapshot::take(n, start.elapsed(), config.server_pid),
                    );
                }
            }
            Ok(Err(Fail::Conflict)) => {
                conflicts += 1;
                if conflicts > config.max_conflicts {
                    stop.get_or_insert(Stop::Conflicts);
                }
            }
            Ok(Err(Fail::Other(e))) => {
                errors += 1;
                first_error.get_or_insert(e);
                if errors > config.max_errors {
                    stop.get_or_insert(Stop::Errors);
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                stop.get_or_insert(Stop::Errors);
            }
        }
    }
    let ramped = Snapshot::take(held.len() as u64, start.elapsed(), config.server_pid);
    on_progress(Progress::Ramped, &ramped);
    hold(config.hold, config.release.as_deref()).await;
    let held_snapshot = Snapshot::take(held.len() as u64, start.elapsed(), config.server_pid);
    let verified = verify(&mut held, config.verify).await;
    let closing = Instant::now();
    drop(held);
    RampReport {
        stop: stop.unwrap_or(Stop::Reached),
        baseline,
        ramped,
        held: held_snapshot,
        errors,
        first_error,
        conflicts,
        verified,
        closed_in: closing.elapsed(),
    }
}

/// Sleeps for `limit`, or until `release` exists, checking every 100 ms.
async fn hold(limit: Duration, release: Option<&Path>) {
    let Some(release) = release else {
        return tokio::time::sleep(limit).await;
    };
    let until = Instant::now() + limit;
    while Instant::now() < until && !release.exists() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Binds `source` (if any), connects and performs the opening handshake,
/// all within `timeout`.
async fn open(
    target: Target,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, Fail> {
    let other = |e: &dyn std::fmt::Display| Fail::Other(e.to_string());
    let taken = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable => Fail::Conflict,
        _ => Fail::Other(format!("connect: {e}")),
    };
    let attempt = async {
        let socket = if target.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| other(&format!("socket: {e}")))?;
        if let Some(source) = source {
            // A TIME_WAIT left by an earlier run on this pair must not
            // refuse the bind; the 4-tuple check at connect still applies.
            socket
                .set_reuseaddr(true)
                .map_err(|e| other(&format!("SO_REUSEADDR: {e}")))?;
            socket.bind(source).map_err(taken)?;
        }
        let tcp = socket.connect(target.addr).await.map_err(taken)?;
        loadgen::handshake(tcp, &target)
            .await
            .map_err(|e| other(&e))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Fail::Other(format!("connect and handshake took over {timeout:?}")))?
}

/// Echoes one 16-byte text message on `count` connections spread evenly
/// over `held`, one at a time; returns (echoed, tried).
async fn verify(held: &mut [TcpStream], count: usize) -> (usize, usize) {
    if count == 0 || held.is_empty() {
        return (0, 0);
    }
    let step = (held.len() / count).max(1);
    let mut echoed = 0;
    let mut tried = 0;
    for (i, tcp) in held.iter_mut().step_by(step).take(count).enumerate() {
        let key = (i as u32).wrapping_mul(0x9e37_79b9).to_le_bytes();
        let (request, reply) = loadgen::echo_frames(16, key);
        let roundtrip = async {
            tcp.write_all(&request).await?;
            let mut got = vec![0u8; reply.len()];
            tcp.read_exact(&mut got).await?;
            Ok::<_, std::io::Error>(got == reply)
        };
        tried += 1;
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(5), roundtrip).await {
            echoed += 1;
        }
    }
    (echoed, tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("1").is_err());
    }

    #[test]
    fn sources_spread_over_addresses_then_ports() {
        let s = Sources::new(3, Shard::WHOLE, 10_000..=10_001).unwrap();
        assert_eq!(s.capacity(), 6);
        let all: Vec<String> = (0..7)
            .map(|k| s.get(k).map(|a| a.to_string()).unwrap_or_default())
            .collect();
        assert_eq!(
            all,
            [
                "127.0.0.2:10000",
                "127.0.0.3:10000",
                "127.0.0.4:10000",
                "127.0.0.2:10001",
                "127.0.0.3:10001",
                "127.0.0.4:10001",
                "",
            ]
        );
    }

    /// Shards of one run never share a source address.
    #[test]
    fn shards_take_disjoint_addresses() {
        let a = Sources::new(5, Shard { index: 0, count: 2 }, 1..=10).unwrap();
        let b = Sources::new(5, Shard { index: 1, count: 2 }, 1..=10).unwrap();
        assert_eq!(a.addrs().len() + b.addrs().len(), 5);
        assert!(a.addrs().iter().all(|x| !b.addrs().contains(x)));
        assert!(Sources::new(1, Shard { index: 0, count: 2 }, 1..=10).is_err());
        assert!(Sources::new(1, Shard::WHOLE, 0..=10).is_err());
    }

    /// A small ramp from explicit sources against the duplex echo server
    /// holds every connection, reports each step, and the sample echoes.
    #[tokio::test(flavor = "current_thread")]
    async fn ramp_holds_and_verifies() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(loadgen::echo_server(
            loadgen::ServerImpl::Duplex,
            listener,
            Duration::from_secs(20),
        ));
        // Ports from a high block unlikely to be listened on; a taken pair
        // is skipped, so the test does not depend on it.
        let config = RampConfig {
            target: Target::parse(&format!("ws://{addr}/")).unwrap(),
            connections: 40,
            concurrency: 8,
            sources: Some(Sources::new(4, Shard::WHOLE, 45_000..=45_999).unwrap()),
            server_pid: Some(std::process::id()),
            report_every: 10,
            min_available_kib: 0,
            connect_timeout: Duration::from_secs(5),
            ramp_timeout: Duration::from_secs(20),
            max_errors: 0,
            max_conflicts: 100,
            hold: Duration::ZERO,
            release: None,
            verify: 5,
        };
        let mut steps = Vec::new();
        let report = run(&config, |p, s| steps.push((p, s.connections))).await;
        assert_eq!(report.stop, Stop::Reached, "{:?}", report.first_error);
        assert_eq!(report.held.connections, 40);
        let step = |n| (Progress::Step, n);
        assert_eq!(
            steps,
            [
                step(10),
                step(20),
                step(30),
                step(40),
                (Progress::Ramped, 40)
            ]
        );
        assert_eq!(report.verified, (5, 5));
        server.abort();
    }

    /// A memory floor above what the machine has stops the ramp before it
    /// opens anything.
    #[tokio::test(flavor = "current_thread")]
    async fn memory_floor_stops_the_ramp() {
        if procstat::meminfo().is_none() {
            return;
        }
        let config = RampConfig {
            target: Target::parse("ws://127.0.0.1:9/").unwrap(),
            connections: 10,
            concurrency: 2,
            sources: None,
            server_pid: None,
            report_every: 0,
            min_available_kib: u64::MAX,
            connect_timeout: Duration::from_secs(1),
            ramp_timeout: Duration::from_secs(5),
            max_errors: 0,
            max_conflicts: 0,
            hold: Duration::ZERO,
            release: None,
            verify: 0,
        };
        let report = run(&config, |_, _| {}).await;
        assert!(matches!(report.stop, Stop::MemoryFloor { .. }));
        assert_eq!(report.held.connections, 0);
    }
}
