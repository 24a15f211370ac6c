//! `duplex-bench`: loopback echo servers and the load generator that
//! measures them (see `docs/benchmarks.md`).
//!
//! ```text
//! duplex-bench echo-server --impl duplex --addr 127.0.0.1:9001
//! duplex-bench load --url ws://127.0.0.1:9001/ --connections 100 --messages 2000 --size 16
//! duplex-bench idle --url ws://127.0.0.1:9001/ --connections 10000 --server-pid PID
//! duplex-bench sio-server --addr 127.0.0.1:3000
//! duplex-bench sio-load --url http://127.0.0.1:3000 --transport polling --clients 1000 --seconds 5
//! ```
//!
//! Each runs on one tokio current-thread runtime; every loop is bounded in
//! count and time, and only loopback addresses are accepted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use duplex_bench::loadgen::{self, LoadConfig, ServerImpl, Target};
use duplex_bench::sioload;

#[derive(Parser)]
#[command(about = "duplex loopback benchmarks: echo servers and a load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs an echo server on one current-thread runtime.
    EchoServer {
        /// Which WebSocket implementation serves.
        #[arg(long = "impl", value_enum)]
        implementation: Impl,
        /// A loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        addr: SocketAddr,
        /// Stop accepting and exit after this many seconds.
        #[arg(long, default_value_t = 600)]
        max_seconds: u64,
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
    /// server's RSS growth per connection.
    Idle {
        /// The server, ws://127.0.0.1:PORT/
        #[arg(long)]
        url: String,
        /// Connections to open and hold.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// The server's process id, to read its RSS from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds to hold the connections before measuring.
        #[arg(long, default_value_t = 2)]
        hold_secs: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Serves Socket.IO at /socket.io/ (duplex-tokio) on one current-thread
    /// runtime; `message-with-ack` acks with its arguments.
    SioServer {
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
}

#[derive(Clone, Copy, ValueEnum)]
enum SioTransport {
    Websocket,
    Polling,
}

#[derive(Clone, Copy, ValueEnum)]
enum Impl {
    Duplex,
    Tungstenite,
    Fastwebsockets,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
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
        Command::EchoServer {
            implementation,
            addr,
            max_seconds,
        } => {
            let imp = match implementation {
                Impl::Duplex => ServerImpl::Duplex,
                Impl::Tungstenite => ServerImpl::Tungstenite,
                Impl::Fastwebsockets => ServerImpl::FastWebSockets,
            };
            let listener = tokio::net::TcpListener::bind(loadgen::ensure_loopback(addr)?).await?;
            println!(
                "{imp:?} echo server on ws://{}/ (pid {}, stops after {max_seconds} s)",
                listener.local_addr()?,
                std::process::id()
            );
            let accepted =
                loadgen::echo_server(imp, listener, Duration::from_secs(max_seconds)).await?;
            println!("accepted {accepted} connections");
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
            timeout_secs,
        } => {
            let r = loadgen::run_idle(
                &Target::parse(&url)?,
                connections,
                concurrency,
                Duration::from_secs(hold_secs),
                server_pid,
                Duration::from_secs(timeout_secs),
            )
            .await?;
            print!(
                "connections={} elapsed={:.3}s handshakes/s={:.0}",
                r.connections,
                r.elapsed.as_secs_f64(),
                r.handshakes_per_sec()
            );
            if let (Some((before, after)), Some(per)) = (r.server_rss_kib, r.rss_per_connection()) {
                print!(" server_rss_kib={before}->{after} rss_per_conn={per:.0}B");
            }
            if let Some((before, after)) = r.tcp_mem_pages {
                print!(" kernel_tcp_mem_pages={before}->{after}");
            }
            println!();
        }
        Command::SioServer {
            addr,
            ping_interval_ms,
            ping_timeout_ms,
            max_seconds,
        } => {
            let listener = tokio::net::TcpListener::bind(loadgen::ensure_loopback(addr)?).await?;
            println!(
                "duplex Socket.IO echo server on http://{}/ (pid {}, stops after {max_seconds} s)",
                listener.local_addr()?,
                std::process::id()
            );
            sioload::echo_server(
                listener,
                Duration::from_millis(ping_interval_ms),
                Duration::from_millis(ping_timeout_ms),
                Duration::from_secs(max_seconds),
            )
            .await
            .map_err(|e| loadgen::Error::Io(std::io::Error::other(e)))?;
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
            let addr = url
                .strip_prefix("http://")
                .map(|a| a.trim_end_matches('/').replace("localhost", "127.0.0.1"))
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .ok_or_else(|| loadgen::Error::BadUrl(url.clone()))?;
            let transport = match transport {
                SioTransport::Websocket => sioload::Transport::WebSocket,
                SioTransport::Polling => sioload::Transport::Polling,
            };
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
            let r = sioload::run_load(&config)
                .await
                .map_err(|e| loadgen::Error::Io(std::io::Error::other(e)))?;
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

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
