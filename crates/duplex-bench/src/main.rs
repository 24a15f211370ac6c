//! `duplex-bench`: loopback echo servers and the load generator that
//! measures them (see `docs/benchmarks.md`).
//!
//! ```text
//! duplex-bench echo-server --impl duplex --addr 127.0.0.1:9001
//! duplex-bench echo-server --impl fastwebsockets --workers 2 --addr 127.0.0.1:9002
//! duplex-bench load --url ws://127.0.0.1:9001/ --connections 100 --messages 2000 --size 16
//! duplex-bench idle --url ws://127.0.0.1:9001/ --connections 10000 --server-pid PID
//! duplex-bench idle --url ws://127.0.0.1:9001/ --connections 1000000 --source-addrs 64 \
//!     --report-every 50000 --server-pid PID
//! duplex-bench echo-server --impl tungstenite --addr 127.0.0.1:9443 --tls-cert cert.pem --tls-key key.pem
//! duplex-bench tls --rounds 3 --seconds 2 --idle 2000
//! duplex-bench sio-server --addr 127.0.0.1:3000
//! duplex-bench sio-server --impl socketioxide --workers 2 --addr 127.0.0.1:3001
//! duplex-bench sio-load --url http://127.0.0.1:3000 --transport polling --clients 1000 --seconds 5
//! duplex-bench sio-idle --url http://127.0.0.1:3000 --transport websocket --clients 10000 --server-pid PID
//! duplex-bench cluster-load --node 127.0.0.1:3001 --node 127.0.0.1:3002 --clients 1000 --broadcasts 50
//! duplex-bench sio-server --rooms --addr 127.0.0.1:3000
//! duplex-bench cluster-load --node 127.0.0.1:3000 --clients 1000 --broadcasts 100 --window 1
//! ```
//!
//! Each runs on one tokio current-thread runtime (but `sio-server` and
//! `echo-server` with `--workers N`, N > 1, on a multi-thread runtime of N
//! workers); every loop is bounded in count and time, and only loopback
//! addresses are accepted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use duplex_bench::loadgen::{self, LoadConfig, ServerImpl, Target};
use duplex_bench::ramp::{self, Progress, RampConfig, RampReport, Shard, Snapshot, Sources, Stop};
use duplex_bench::{clusterload, sioload};
use duplex_bench::{fdlimit, procstat, tlsbench};

#[derive(Parser)]
#[command(about = "duplex loopback benchmarks: echo servers and a load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs an echo server on one current-thread runtime, or a
    /// multi-thread one with --workers N.
    EchoServer {
        /// Which WebSocket implementation serves.
        #[arg(long = "impl", value_enum)]
        implementation: Impl,
        /// Runtime worker threads: 1 is a current-thread runtime, N > 1 a
        /// multi-thread runtime of N workers (the same for every --impl).
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// A loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        addr: SocketAddr,
        /// Stop accepting and exit after this many seconds.
        #[arg(long, default_value_t = 600)]
        max_seconds: u64,
        /// The listen backlog (the kernel caps it at net.core.somaxconn).
        #[arg(long, default_value_t = 1024)]
        backlog: u32,
        /// Raise the descriptor limit to this (the hard limit too, as root,
        /// up to fs.nr_open); without it the soft limit rises to the hard.
        #[arg(long)]
        nofile: Option<u64>,
        /// Serve wss:// with this certificate chain (PEM); duplex and
        /// tungstenite only.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// The cost of TLS (issue #17): duplex and tokio-tungstenite echo
    /// servers (child processes of this binary) over ws:// and wss://
    /// with a certificate made at start; echo msgs/s, handshakes/s and
    /// server RSS per idle connection, the servers interleaved, in rounds;
    /// prints each sample, then a Markdown table of the medians.
    Tls {
        /// Rounds (fresh servers each).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds per echo or handshake cell.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Idle connections per server for the memory cell.
        #[arg(long, default_value_t = 2000)]
        idle: usize,
        /// Handshake loops in flight in the handshake cell.
        #[arg(long, default_value_t = 16)]
        handshake_concurrency: usize,
    },
    /// C connections, each sending M messages of S bytes one at a time and
    /// awaiting each echo; prints msgs/s and round-trip percentiles.
    Load {
        /// The server, ws://127.0.0.1:PORT/
        #[arg(long)]
        url: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Messages per connection.
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        /// Payload bytes per message.
        #[arg(long, default_value_t = 16)]
        size: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
    /// Opens N connections and holds them idle; prints handshakes/s and the
    /// server's RSS growth per connection, and with --report-every the
    /// server's RSS and the kernel's socket memory as the count ramps up.
    /// Stops ramping at the target, at the first failure, or when
    /// MemAvailable falls below --min-available-mib.
    Idle {
        /// The server, ws://127.0.0.1:PORT/
        #[arg(long)]
        url: String,
        /// Connections to open and hold (all shards together).
        #[arg(long, default_value_t = 10_000)]
        connections: u64,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// The server's process id, to read its RSS from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds to hold the connections before measuring.
        #[arg(long, default_value_t = 2)]
        hold_secs: u64,
        /// End the hold as soon as this file exists (--hold-secs becomes
        /// the longest wait): lets a harness measure with every client
        /// process's connections held, then release them together.
        #[arg(long)]
        hold_until: Option<std::path::PathBuf>,
        /// Give up ramping after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        /// Bind each socket to an explicit (address, port) among this many
        /// addresses from 127.0.0.2 up, so that (address, port) pairs do not
        /// run out; 0 connects from 127.0.0.1 with a kernel-chosen port.
        #[arg(long, default_value_t = 0)]
        source_addrs: u32,
        /// The source ports used on each source address, LO-HI.
        #[arg(long, default_value = "10000-60999")]
        source_ports: String,
        /// This process's part, i/n, of a run split across n client
        /// processes (each takes every n-th source address and 1/n of the
        /// connections).
        #[arg(long, default_value = "0/1")]
        shard: String,
        /// Print a progress line every this many connections (0: none).
        #[arg(long, default_value_t = 0)]
        report_every: u64,
        /// Stop ramping when the machine's MemAvailable falls below this.
        #[arg(long, default_value_t = 2048)]
        min_available_mib: u64,
        /// One connect plus handshake must finish within this.
        #[arg(long, default_value_t = 10)]
        connect_timeout_secs: u64,
        /// Stop ramping after more failures than this.
        #[arg(long, default_value_t = 0)]
        max_errors: u64,
        /// After the hold, echo one message on this many held connections.
        #[arg(long, default_value_t = 0)]
        verify: usize,
        /// Raise the descriptor limit to this (see echo-server --nofile);
        /// by default, to the connection count plus a margin.
        #[arg(long)]
        nofile: Option<u64>,
    },
    /// Serves Socket.IO at /socket.io/ (duplex-tokio, or socketioxide) on
    /// one current-thread runtime, or a multi-thread one with --workers N;
    /// `message-with-ack` acks with its arguments (and with --rooms, `join`
    /// and `to-room` serve the broadcast load).
    SioServer {
        /// Which Socket.IO server: duplex-tokio's or socketioxide's, both
        /// behind the same hyper accept loop.
        #[arg(long = "impl", value_enum, default_value = "duplex")]
        server: SioImpl,
        /// Runtime worker threads: 1 is a current-thread runtime, N > 1 a
        /// multi-thread runtime of N workers.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// A loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Engine.IO pingInterval, in milliseconds.
        #[arg(long, default_value_t = 25_000)]
        ping_interval_ms: u64,
        /// Engine.IO pingTimeout, in milliseconds.
        #[arg(long, default_value_t = 20_000)]
        ping_timeout_ms: u64,
        /// Stop accepting and exit after this many seconds.
        #[arg(long, default_value_t = 600)]
        max_seconds: u64,
        /// Also serve `join` (into the room named) and `to-room` (emit
        /// `room-msg` to the room), both acked "ok", for `cluster-load`.
        #[arg(long)]
        rooms: bool,
    },
    /// C Socket.IO clients on one transport, each emitting
    /// `message-with-ack` and awaiting its ack for S seconds; prints one
    /// JSON line (acks/s, round-trip percentiles, CPU used).
    SioLoad {
        /// The server, http://127.0.0.1:PORT
        #[arg(long)]
        url: String,
        /// The one transport the clients use.
        #[arg(long, value_enum)]
        transport: SioTransport,
        /// Concurrent clients.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Seconds the clients emit for, once all are connected.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Characters in each event's string argument.
        #[arg(long, default_value_t = 16)]
        size: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 50)]
        connect_concurrency: usize,
        /// A client waiting longer than this for one ack stops (dropped).
        #[arg(long, default_value_t = 10)]
        step_timeout_secs: u64,
        /// Server process ids whose CPU use to report (repeatable).
        #[arg(long)]
        server_pid: Vec<u32>,
    },
    /// N Socket.IO clients on one transport that connect to `/` (the
    /// Engine.IO handshake and the Socket.IO CONNECT), then stay idle
    /// answering pings; prints the server's RSS growth per client as one
    /// JSON line.
    SioIdle {
        /// The server, http://127.0.0.1:PORT
        #[arg(long)]
        url: String,
        /// The one transport the clients use.
        #[arg(long, value_enum)]
        transport: SioTransport,
        /// Clients to connect and hold.
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds to hold the clients before measuring.
        #[arg(long, default_value_t = 2.0)]
        hold_secs: f64,
        /// End the hold as soon as this file exists (--hold-secs becomes
        /// the longest wait).
        #[arg(long)]
        hold_until: Option<std::path::PathBuf>,
        /// One client's handshake must finish within this.
        #[arg(long, default_value_t = 10)]
        connect_timeout_secs: u64,
        /// The server's process id, to read its RSS from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// C WebSocket clients spread over the nodes of a Socket.IO cluster
    /// (servers of the cluster contract sharing one Redis), or on one
    /// server, all in one room; B broadcasts to the room asked of the first
    /// node; prints the deliveries per second and the request to last
    /// delivery times as one JSON line.
    ClusterLoad(clusterload::ClusterLoadConfig),
    /// A mix of clients (WebSocket echo, STOMP over WebSocket and TCP with
    /// client acks, Socket.IO over WebSocket, polling and upgrades with
    /// acks) against one `duplex serve` for S seconds, some killed
    /// mid-session; checks every promised message arrives exactly once,
    /// `/stats` back to zero, RSS flat; prints `N passed, N failed`.
    Soak {
        /// The server, http://127.0.0.1:PORT
        #[arg(long)]
        url: String,
        /// Its STOMP TCP listener (--stomp-addr of duplex serve), to soak
        /// STOMP over TCP too.
        #[arg(long)]
        stomp_addr: Option<String>,
        /// How long to run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The server's pid, for its RSS trend.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Concurrent clients per kind.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Numbered messages per session.
        #[arg(long, default_value_t = 50)]
        messages: u32,
        /// Only these kinds of client, comma-separated (ws, stomp-tcp,
        /// stomp-ws, stomp-sockjs-ws, stomp-sockjs-xhr, stomp-sockjs-stream,
        /// sio-ws, sio-polling, sio-upgrade, sse, kill-mid); all by default.
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SioTransport {
    Websocket,
    Polling,
}

#[derive(Clone, Copy, ValueEnum)]
enum SioImpl {
    Duplex,
    Socketioxide,
}

#[derive(Clone, Copy, ValueEnum)]
enum Impl {
    Duplex,
    DuplexCopy,
    Tungstenite,
    Fastwebsockets,
}

impl Command {
    /// The runtime's worker threads: only the servers are measured on more
    /// than one (issues #18, #19); the clients keep one current-thread
    /// runtime, so that the harness is the same for every server.
    fn workers(&self) -> usize {
        match *self {
            Command::SioServer { workers, .. } | Command::EchoServer { workers, .. } => {
                workers.max(1)
            }
            _ => 1,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workers = cli.command.workers();
    let mut builder = if workers > 1 {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), loadgen::Error> {
    match command {
        Command::Soak {
            url,
            stomp_addr,
            seconds,
            server_pid,
            workers,
            messages,
            kinds,
        } => {
            for addr in std::iter::once(url.trim_start_matches("http://").trim_end_matches('/'))
                .chain(stomp_addr.as_deref())
            {
                let loopback = addr
                    .parse::<SocketAddr>()
                    .is_ok_and(|a| a.ip().is_loopback());
                if !loopback {
                    return Err(loadgen::Error::BadUrl(format!(
                        "{addr}: only loopback addresses"
                    )));
                }
            }
            let failed = duplex_bench::soak::run(duplex_bench::soak::SoakConfig {
                url,
                stomp_addr,
                duration: Duration::from_secs(seconds),
                server_pid,
                workers,
                messages,
                kinds,
            })
            .await;
            if failed > 0 {
                return Err(loadgen::Error::Io(std::io::Error::other(format!(
                    "soak: {failed} checks failed"
                ))));
            }
        }
        Command::EchoServer {
            implementation,
            workers,
            addr,
            max_seconds,
            backlog,
            nofile,
            tls_cert,
            tls_key,
        } => {
            let imp = match implementation {
                Impl::Duplex => ServerImpl::Duplex,
                Impl::DuplexCopy => ServerImpl::DuplexCopy,
                Impl::Tungstenite => ServerImpl::Tungstenite,
                Impl::Fastwebsockets => ServerImpl::FastWebSockets,
            };
            let (soft, _) = fdlimit::raise_nofile(nofile);
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(loadgen::ensure_loopback(addr)?)?;
            let listener = socket.listen(backlog)?;
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(tlsbench::ServerTls::new(
                    imp,
                    &std::fs::read_to_string(cert)?,
                    &std::fs::read_to_string(key)?,
                )?),
                _ => None,
            };
            println!(
                "{imp:?} echo server on {}://{}/ ({} worker(s), pid {}, stops after {max_seconds} s, backlog {backlog}, nofile {})",
                if tls.is_some() { "wss" } else { "ws" },
                listener.local_addr()?,
                workers.max(1),
                std::process::id(),
                limit(soft),
            );
            let accepted =
                loadgen::echo_server_with(imp, listener, Duration::from_secs(max_seconds), tls)
                    .await?;
            println!("accepted {accepted} connections");
        }
        Command::Tls {
            rounds,
            seconds,
            idle,
            handshake_concurrency,
        } => {
            let cell = Duration::try_from_secs_f64(seconds)
                .map_err(|_| loadgen::Error::BadUrl(format!("--seconds {seconds}")))?;
            let config = tlsbench::ScenarioConfig {
                exe: std::env::current_exe()?,
                dir: std::env::temp_dir().join(format!("duplex-bench-tls-{}", std::process::id())),
                rounds,
                cell,
                idle,
                handshake_concurrency,
            };
            fdlimit::raise_nofile(Some(idle as u64 + 1024));
            let samples = tlsbench::run_scenario(&config, |round, s| {
                let cpu = s
                    .server_cpu_us
                    .map_or(String::new(), |us| format!(" server_cpu_us={us:.1}"));
                println!(
                    "round={round} server={} transport={} cell={:?} value={:.0}{cpu}",
                    s.server, s.transport, s.cell, s.value
                );
            })
            .await?;
            println!(
                "\nmedians of {rounds} rounds, {seconds} s per cell, {idle} idle connections:\n"
            );
            print!("{}", tlsbench::table(&samples, false));
            println!("\nthe servers' CPU per message or handshake (medians):\n");
            print!("{}", tlsbench::table(&samples, true));
        }
        Command::Load {
            url,
            connections,
            messages,
            size,
            timeout_secs,
        } => {
            let config = LoadConfig {
                target: Target::parse(&url)?,
                connections,
                messages,
                size,
                timeout: Duration::from_secs(timeout_secs),
            };
            let r = loadgen::run_load(&config).await?;
            println!(
                "connections={} size={} messages={} elapsed={:.3}s msgs/s={:.0} p50={:.1}us p99={:.1}us max={:.1}us",
                r.connections,
                size,
                r.messages,
                r.elapsed.as_secs_f64(),
                r.msgs_per_sec(),
                micros(r.p50),
                micros(r.p99),
                micros(r.max),
            );
        }
        Command::Idle {
            url,
            connections,
            concurrency,
            server_pid,
            hold_secs,
            hold_until,
            timeout_secs,
            source_addrs,
            source_ports,
            shard,
            report_every,
            min_available_mib,
            connect_timeout_secs,
            max_errors,
            verify,
            nofile,
        } => {
            let usage = |e: String| loadgen::Error::Io(std::io::Error::other(e));
            let shard = Shard::parse(&shard).map_err(usage)?;
            let sources = if source_addrs == 0 {
                if shard != Shard::WHOLE {
                    return Err(usage("--shard needs --source-addrs".into()));
                }
                None
            } else {
                let ports = parse_ports(&source_ports).map_err(usage)?;
                Some(Sources::new(source_addrs, shard, ports).map_err(usage)?)
            };
            // This shard's share: the first `connections % count` shards
            // take one more.
            let (i, n) = (u64::from(shard.index), u64::from(shard.count));
            let share = connections / n + u64::from(i < connections % n);
            let (soft, hard) = fdlimit::raise_nofile(Some(nofile.unwrap_or(share + 1024)));
            println!(
                "idle: {share} connections to {url} (shard {}/{}), {} source addresses x {source_ports} ports, nofile {}/{}, nr_open {}, stop below {min_available_mib} MiB available",
                shard.index,
                shard.count,
                sources.as_ref().map_or(0, |s| s.addrs().len()),
                limit(soft),
                limit(hard),
                fdlimit::nr_open().map_or("?".into(), |v| v.to_string()),
            );
            let config = RampConfig {
                target: Target::parse(&url)?,
                connections: share,
                concurrency,
                sources,
                server_pid,
                report_every,
                min_available_kib: min_available_mib * 1024,
                connect_timeout: Duration::from_secs(connect_timeout_secs),
                ramp_timeout: Duration::from_secs(timeout_secs),
                max_errors,
                max_conflicts: share / 100 + 100,
                hold: Duration::from_secs(hold_secs),
                release: hold_until,
                verify,
            };
            let mut previous = (0u64, Duration::ZERO);
            let report = ramp::run(&config, |progress, s| match progress {
                Progress::Step => {
                    let rate = (s.connections - previous.0) as f64
                        / (s.elapsed - previous.1).as_secs_f64().max(1e-9);
                    previous = (s.connections, s.elapsed);
                    println!("step {} rate={rate:.0}/s", describe(s, config.server_pid));
                }
                // A harness waits for this line to know the ramp is over.
                Progress::Ramped => println!("ramped {}", describe(s, config.server_pid)),
            })
            .await;
            print_report(&report, config.server_pid);
            if report.stop != Stop::Reached {
                return Err(usage(format!(
                    "stopped at {} of {share} connections: {}",
                    report.held.connections,
                    stop_reason(&report)
                )));
            }
        }
        Command::SioServer {
            server,
            workers,
            addr,
            ping_interval_ms,
            ping_timeout_ms,
            max_seconds,
            rooms,
        } => {
            // Ten thousand idle polling clients hold two connections each.
            fdlimit::raise_nofile(Some(65_536));
            let listener = tokio::net::TcpListener::bind(loadgen::ensure_loopback(addr)?).await?;
            let name = match server {
                SioImpl::Duplex => "duplex",
                SioImpl::Socketioxide => "socketioxide",
            };
            println!(
                "{name} Socket.IO echo server on http://{}/ ({} worker(s), pid {}, stops after {max_seconds} s)",
                listener.local_addr()?,
                workers.max(1),
                std::process::id()
            );
            let config = sioload::ServeConfig {
                ping_interval: Duration::from_millis(ping_interval_ms),
                ping_timeout: Duration::from_millis(ping_timeout_ms),
                run_for: Duration::from_secs(max_seconds),
                rooms,
            };
            match server {
                SioImpl::Duplex => sioload::echo_server(listener, config).await?,
                SioImpl::Socketioxide => {
                    sioload::socketioxide_echo_server(listener, config).await?
                }
            };
        }
        Command::ClusterLoad(config) => {
            let window = config.window;
            let r = clusterload::run(&config)
                .await
                .map_err(|e| loadgen::Error::Io(std::io::Error::other(e)))?;
            println!(
                "{{\"clients\":{},\"broadcasts\":{},\"window\":{window},\"deliveries\":{},\"seconds\":{:.3},\"deliveries_per_s\":{:.0},\"short_clients\":{},\"p50_us\":{:.0},\"p99_us\":{:.0},\"server_cpu_us_per_delivery\":{}}}",
                r.clients,
                r.broadcasts,
                r.deliveries,
                r.elapsed.as_secs_f64(),
                r.rate(),
                r.short_clients,
                micros(r.latency.p50),
                micros(r.latency.p99),
                r.server_cpu_s
                    .filter(|_| r.deliveries > 0)
                    .map_or("null".into(), |s| format!(
                        "{:.3}",
                        s * 1e6 / r.deliveries as f64
                    )),
            );
        }
        Command::SioIdle {
            url,
            transport,
            clients,
            concurrency,
            hold_secs,
            hold_until,
            connect_timeout_secs,
            server_pid,
        } => {
            let config = sioload::IdleConfig {
                addr: sio_addr(&url)?,
                transport: sio_transport(transport),
                clients,
                concurrency,
                hold: Duration::try_from_secs_f64(hold_secs)
                    .map_err(|_| loadgen::Error::BadUrl(format!("--hold-secs {hold_secs}")))?,
                release: hold_until,
                connect_timeout: Duration::from_secs(connect_timeout_secs),
                server_pid,
            };
            // A polling client holds two connections.
            fdlimit::raise_nofile(Some(2 * clients as u64 + 1024));
            let r = sioload::run_idle(&config, |n, rss| {
                // A harness (a profiler's) waits for this line.
                println!(
                    "ramped clients={n} server_rss_kib={}",
                    rss.map_or("null".into(), |k| k.to_string())
                );
            })
            .await?;
            let kib = |v: Option<u64>| v.map_or("null".to_string(), |k| k.to_string());
            println!(
                "{{\"transport\":\"{}\",\"clients\":{},\"connect_s\":{:.3},\"server_rss_kib\":[{},{},{}],\
                 \"rss_per_client_b\":{},\"pings\":{},\"lost\":{}}}",
                config.transport.name(),
                r.clients,
                r.connect_elapsed.as_secs_f64(),
                kib(r.baseline_rss_kib),
                kib(r.ramped_rss_kib),
                kib(r.held_rss_kib),
                r.rss_per_client()
                    .map_or("null".into(), |b| format!("{b:.0}")),
                r.pings,
                r.lost,
            );
        }
        Command::SioLoad {
            url,
            transport,
            clients,
            seconds,
            size,
            connect_concurrency,
            step_timeout_secs,
            server_pid,
        } => {
            let addr = sio_addr(&url)?;
            let transport = sio_transport(transport);
            let config = sioload::LoadConfig {
                addr,
                transport,
                clients,
                duration: Duration::try_from_secs_f64(seconds)
                    .map_err(|_| loadgen::Error::BadUrl(format!("--seconds {seconds}")))?,
                size,
                connect_concurrency,
                step_timeout: Duration::from_secs(step_timeout_secs),
                server_pids: server_pid,
            };
            let r = sioload::run_load(&config).await?;
            let json_opt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
            let servers_cpu: Vec<String> = r.server_cpu.iter().map(|&c| json_opt(c)).collect();
            let servers_rss: Vec<String> = r
                .server_rss_kib
                .iter()
                .map(|k| k.map_or("null".to_string(), |k| k.to_string()))
                .collect();
            println!(
                "{{\"client\":\"rust\",\"transport\":\"{}\",\"clients\":{},\"acks\":{},\"seconds\":{:.3},\
                 \"acks_per_s\":{:.0},\"p50_us\":{:.0},\"p99_us\":{:.0},\"wrong\":{},\"dropped\":{},\
                 \"client_cpu\":{},\"server_cpu\":[{}],\"server_rss_kib\":[{}]}}",
                transport.name(),
                r.clients,
                r.acks,
                r.elapsed.as_secs_f64(),
                r.acks_per_sec(),
                micros(r.p50),
                micros(r.p99),
                r.wrong,
                r.dropped,
                json_opt(r.client_cpu),
                servers_cpu.join(","),
                servers_rss.join(","),
            );
            if r.wrong > 0 {
                return Err(loadgen::Error::Io(std::io::Error::other(format!(
                    "{} acks carried the wrong arguments",
                    r.wrong
                ))));
            }
        }
    }
    Ok(())
}

/// The address of `http://127.0.0.1:PORT`.
fn sio_addr(url: &str) -> Result<SocketAddr, loadgen::Error> {
    url.strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').replace("localhost", "127.0.0.1"))
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .ok_or_else(|| loadgen::Error::BadUrl(url.to_owned()))
}

fn sio_transport(transport: SioTransport) -> sioload::Transport {
    match transport {
        SioTransport::Websocket => sioload::Transport::WebSocket,
        SioTransport::Polling => sioload::Transport::Polling,
    }
}

/// Parses `LO-HI`.
fn parse_ports(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let bad = || format!("bad port range {text:?}: expected LO-HI");
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    Ok(lo.trim().parse().map_err(|_| bad())?..=hi.trim().parse().map_err(|_| bad())?)
}

fn limit(value: Option<u64>) -> String {
    value.map_or("unlimited".into(), |v| v.to_string())
}

/// One snapshot as `key=value` fields, memory in MiB.
fn describe(s: &Snapshot, server_pid: Option<u32>) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut line = format!(
        "connections={} elapsed={:.1}s",
        s.connections,
        s.elapsed.as_secs_f64()
    );
    if let Some(rss) = s.server_rss_kib {
        line += &format!(" server_rss={:.1}MiB", mib(rss));
    } else if server_pid.is_some() {
        line += " server_rss=gone";
    }
    if let Some(rss) = s.client_rss_kib {
        line += &format!(" client_rss={:.1}MiB", mib(rss));
    }
    if let Some(m) = s.mem {
        line += &format!(
            " mem_available={:.0}MiB slab={:.1}MiB sunreclaim={:.1}MiB",
            mib(m.available_kib),
            mib(m.slab_kib),
            mib(m.sunreclaim_kib)
        );
    }
    if let Some(t) = s.tcp {
        line += &format!(
            " tcp_inuse={} tcp_tw={} tcp_mem_pages={}",
            t.inuse, t.tw, t.mem_pages
        );
    }
    if let Some(c) = s.conntrack {
        line += &format!(" conntrack={c}");
    }
    for name in procstat::SOCKET_SLABS {
        if let Some(bytes) = s.slab_bytes(name) {
            line += &format!(" slab_{name}={:.1}MiB", bytes as f64 / 1048576.0);
        }
    }
    line
}

fn stop_reason(r: &RampReport) -> String {
    match &r.stop {
        Stop::Reached => "reached the target".into(),
        Stop::MemoryFloor { available_kib } => {
            format!("MemAvailable fell to {} MiB", available_kib / 1024)
        }
        Stop::Errors => format!(
            "{} failed connections, the first: {}",
            r.errors,
            r.first_error.as_deref().unwrap_or("?")
        ),
        Stop::SourcesExhausted => "every source (address, port) pair is used".into(),
        Stop::Conflicts => format!("{} source pairs were already taken", r.conflicts),
        Stop::Timeout => "the ramp timed out".into(),
    }
}

fn print_report(r: &RampReport, server_pid: Option<u32>) {
    println!("held {}", describe(&r.held, server_pid));
    // The summary line keeps the fields earlier runs printed.
    print!(
        "connections={} elapsed={:.3}s handshakes/s={:.0}",
        r.ramped.connections,
        r.ramped.elapsed.as_secs_f64(),
        r.handshakes_per_sec()
    );
    if let (Some(before), Some(after), Some(per)) = (
        r.baseline.server_rss_kib,
        r.held.server_rss_kib,
        r.server_rss_per_connection(),
    ) {
        print!(" server_rss_kib={before}->{after} rss_per_conn={per:.0}B");
    }
    if let (Some(before), Some(after)) = (r.baseline.tcp, r.held.tcp) {
        print!(
            " kernel_tcp_mem_pages={}->{}",
            before.mem_pages, after.mem_pages
        );
    }
    if let Some(per) = r.slab_per_connection() {
        print!(" slab_per_conn={per:.0}B");
    }
    let (echoed, tried) = r.verified;
    if tried > 0 {
        print!(" verified={echoed}/{tried}");
    }
    print!(
        " errors={} conflicts={} closed_in={:.1}s stop=\"{}\"",
        r.errors,
        r.conflicts,
        r.closed_in.as_secs_f64(),
        stop_reason(r)
    );
    println!();
    // Where the kernel's memory went: the slab caches that grew most.
    let mut grown: Vec<(String, i64, u64)> = r
        .held
        .slabs
        .iter()
        .map(|c| {
            let before = r.baseline.slab_bytes(&c.name).unwrap_or(0);
            (c.name.clone(), c.bytes as i64 - before as i64, c.objsize)
        })
        .collect();
    grown.sort_by_key(|(_, delta, _)| -*delta);
    if !grown.is_empty() {
        let n = r.held.connections.max(1) as f64;
        print!("slab growth:");
        for (name, delta, objsize) in grown.iter().take(8) {
            print!(
                " {name}={:.1}MiB({:.0}B/conn,obj {objsize}B)",
                *delta as f64 / 1048576.0,
                *delta as f64 / n
            );
        }
        println!();
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("duplex-bench").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    /// `--workers` reaches the runtime for both servers, and only for them.
    #[test]
    fn servers_take_their_worker_count() {
        let echo = ["echo-server", "--impl", "fastwebsockets"];
        assert_eq!(parse(&echo).workers(), 1);
        assert_eq!(
            parse(&[&echo[..], &["--workers", "2"]].concat()).workers(),
            2
        );
        assert_eq!(parse(&["sio-server", "--workers", "3"]).workers(), 3);
        assert_eq!(parse(&["sio-server", "--workers", "0"]).workers(), 1);
        assert_eq!(parse(&["load", "--url", "ws://127.0.0.1:1/"]).workers(), 1);
        assert!(matches!(
            parse(&["sio-server", "--rooms"]),
            Command::SioServer { rooms: true, .. }
        ));
        assert!(matches!(
            parse(&["cluster-load", "--node", "127.0.0.1:1", "--window", "4"]),
            Command::ClusterLoad(c) if c.window == 4
        ));
    }
}
