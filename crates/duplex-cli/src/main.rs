//! The `duplex` binary: the demo server, the server every outside
//! conformance suite is pointed at, and the Autobahn client driver.

mod autobahn;
mod conn_limit;
mod connect;
mod cors;
mod demo;
mod heap_trim;
mod http_server;
mod socketio;
mod socketio_suites;
mod sockjs_stomp;

use std::net::SocketAddr;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// duplex: real-time, two-way protocols for Rust.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo server: a chat in the browser over every transport.
    ///
    /// Endpoints:
    ///   /                 the chat page (embedded HTML, CSS, JavaScript)
    ///   /ws               the page's WebSocket (JSON chat messages; permessage-deflate)
    ///   /poll/            the page's long-polling client (SockJS dialect, xhr)
    ///   /sse/events       the page's Server-Sent Events stream
    ///   /sse/send         POST ?session=ID: the SSE client's upstream
    ///   /socket.io/       Socket.IO: chat events join/say/latency, emits chat/presence;
    ///                     message, message-with-ack, server-ack on / and /custom
    ///   /stomp            STOMP over WebSocket (v10/v11/v12.stomp)
    ///   /sockjs/stomp     STOMP over SockJS; /sockjs/echo: SockJS echo
    ///                     chat rooms are STOMP destinations /topic/chat.<room>
    ///   /echo             WebSocket echo (text as text, binary as binary)
    ///   /stats            JSON: connections per transport, messages and bytes, sessions expired
    ///
    /// STOMP over TCP only with --stomp-addr. Ctrl-C or SIGTERM shuts down
    /// gracefully: every client gets its protocol's close. Logs go to stderr,
    /// filtered by RUST_LOG (default info).
    #[command(verbatim_doc_comment)]
    Serve {
        /// Address to listen on (port 0: any free port; the URL is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Also serve STOMP over TCP on this address (off unless given). The
        /// server exits non-zero when it cannot listen there, as for --addr.
        #[arg(long)]
        stomp_addr: Option<SocketAddr>,
        /// Relay STOMP clients to the external broker at this address
        /// (RabbitMQ's STOMP plugin) instead of the embedded broker.
        #[arg(long)]
        stomp_relay: Option<String>,
        /// Seconds a graceful shutdown may take before the remaining
        /// connections are dropped.
        #[arg(long, default_value_t = 5.0)]
        shutdown_timeout: f64,
        #[command(flatten)]
        limits: conn_limit::Limits,
        /// Join the Socket.IO namespace `/` to a cluster of servers on this
        /// Redis (redis://HOST:PORT), wire-compatible with Node's
        /// @socket.io/redis-adapter (classic mode).
        #[arg(long)]
        redis: Option<String>,
        #[command(flatten)]
        tls: http_server::TlsArgs,
        /// Let pages from ORIGIN (e.g. https://app.example) use Socket.IO,
        /// SockJS and SSE: CORS headers with credentials, preflights
        /// answered, other origins refused with 403. Repeatable; `*` allows
        /// any origin. Default: Socket.IO sends no CORS headers, SockJS and
        /// SSE allow any origin.
        #[arg(long = "cors-origin", value_name = "ORIGIN")]
        cors_origins: Vec<String>,
    },
    /// Run the server that the outside conformance suites are pointed at,
    /// with test settings.
    ///
    /// Endpoints: /echo (WebSocket echo, for Autobahn|Testsuite's fuzzingclient);
    /// the sockjs-protocol suite's services /sockjs/echo, /sockjs/close,
    /// /sockjs/disabled_websocket_echo, /sockjs/cookie_needed_echo (4096-byte
    /// streaming limit); STOMP at /stomp, /sockjs/stomp and --stomp-addr.
    /// Ctrl-C or SIGTERM closes the Socket.IO clients as Node's io.close()
    /// (reason "server shutting down"; they reconnect), then exits.
    ConformanceServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Serve STOMP over TCP on this address (port 0: any free port). The
        /// server exits non-zero when it cannot listen there, as for --addr.
        /// Default 127.0.0.1:61613; with --redis, none unless given (the
        /// cluster contract starts several nodes on one machine with
        /// only --addr and --redis).
        #[arg(long)]
        stomp_addr: Option<SocketAddr>,
        /// Relay STOMP clients to the external broker at this address
        /// (RabbitMQ's STOMP plugin) instead of the embedded broker.
        #[arg(long)]
        stomp_relay: Option<String>,
        #[command(flatten)]
        limits: conn_limit::Limits,
        /// Serve the Socket.IO cluster contract (shared/conformance/
        /// socketio-cluster.md) on / and /chat instead, in a cluster on this
        /// Redis (redis://HOST:PORT).
        #[arg(long)]
        redis: Option<String>,
        /// With --redis: the sharded protocol (SPUBLISH/SSUBSCRIBE).
        #[arg(long, requires = "redis")]
        redis_sharded: bool,
        /// With --redis: the streams adapter (@socket.io/redis-streams-adapter
        /// 0.3.x: broadcasts in a stream, requests over pub/sub).
        #[arg(long, requires = "redis", conflicts_with = "redis_sharded")]
        redis_streams: bool,
        /// Put the recovery endpoint (/recovery/) in a cluster on this
        /// Redis (redis://HOST:PORT) with the streams adapter (Node's
        /// @socket.io/redis-streams-adapter): a client cut from one node
        /// is recovered by any other.
        #[arg(long, value_name = "URL")]
        recovery_redis: Option<String>,
        #[command(flatten)]
        tls: http_server::TlsArgs,
        /// Allow only pages from ORIGIN to use Socket.IO and SockJS
        /// (repeatable; `*`: any). Default: any origin, with credentials,
        /// as the outside browser tests open their pages from elsewhere.
        #[arg(long = "cors-origin", value_name = "ORIGIN")]
        cors_origins: Vec<String>,
        /// With --redis-sharded: the adapter's subscriptionMode (static,
        /// dynamic or dynamic-private), as Node's option.
        #[arg(long, default_value = "dynamic", requires = "redis_sharded", value_parser = socketio::parse_subscription_mode)]
        redis_subscription_mode: duplex_redis::SubscriptionMode,
    },
    /// Drive an Autobahn|Testsuite fuzzingserver with the duplex client:
    /// run every case (echoing each message), then ask for the reports.
    AutobahnClient {
        /// The fuzzingserver's URL, e.g. ws://127.0.0.1:9001.
        url: String,
        /// The agent name the reports are filed under.
        #[arg(long, default_value = "duplex")]
        agent: String,
    },
    /// Connect to a server as a client (WebSocket, Socket.IO, STOMP, SSE):
    /// stdin lines out, what arrives on stdout.
    Connect(Box<connect::Args>),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The client picks its own runtime and exit codes (2: usage).
    let cli = match cli.command {
        Command::Connect(mut args) => {
            if let Some(("connect", sub)) = matches.subcommand() {
                args.group_emits(sub);
            }
            return connect::main(*args);
        }
        command => Cli { command },
    };
    // The conformance server runs on one thread, as the Node reference
    // does: requests that arrive together on separate connections are then
    // handled in arrival order (the official suites race a GET against a
    // POST `1` and expect the GET first; a multi-threaded scheduler, with
    // its LIFO slot, often runs the later one first).
    let mut builder = match cli.command {
        Command::ConformanceServer { .. } => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("duplex: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                addr,
                stomp_addr,
                stomp_relay,
                shutdown_timeout,
                limits,
                redis,
                tls,
                cors_origins,
            } => {
                heap_trim::spawn(heap_trim::PERIOD);
                cors::init(cors::policy(&cors_origins, None));
                socketio::init(socketio::Settings::Reference);
                sockjs_stomp::init(sockjs_stomp::Settings {
                    stomp_addr,
                    relay: stomp_relay,
                    conformance: false,
                    max_connections: limits.max_stomp_connections,
                })
                .await?;
                let (stomp, sockjs) =
                    sockjs_stomp::endpoints().ok_or("the STOMP endpoints did not start")?;
                let io = demo::init(stomp, sockjs, socketio::conformance_handlers);
                if let Some(url) = &redis {
                    socketio::attach_redis(&io, url, &["/"], duplex_redis::RedisMode::Classic)?;
                }
                socketio::install(io);
                let timeout = std::time::Duration::try_from_secs_f64(shutdown_timeout)
                    .map_err(|e| format!("--shutdown-timeout: {e}"))?;
                let stop = async move {
                    first_signal(timeout).await;
                    let deadline = std::time::Instant::now() + timeout;
                    demo::shutdown(deadline).await;
                    // The HTTP connections get a last moment to finish
                    // writing what they were told.
                    deadline.max(std::time::Instant::now() + std::time::Duration::from_secs(1))
                };
                http_server::run(
                    addr,
                    "duplex demo server",
                    limits.max_connections,
                    &tls,
                    stop,
                )
                .await?;
                tracing::info!("shut down");
                Ok(())
            }
            Command::ConformanceServer {
                addr,
                stomp_addr,
                stomp_relay,
                limits,
                redis,
                redis_sharded,
                redis_streams,
                recovery_redis,
                tls,
                cors_origins,
                redis_subscription_mode,
            } => {
                heap_trim::spawn(heap_trim::PERIOD);
                cors::init(cors::policy(
                    &cors_origins,
                    Some(duplex_tokio::Cors::permissive()),
                ));
                socketio::init(socketio::Settings::Conformance);
                if let Some(url) = &redis {
                    let mode = if redis_sharded {
                        duplex_redis::RedisMode::Sharded(redis_subscription_mode)
                    } else if redis_streams {
                        duplex_redis::RedisMode::Streams
                    } else {
                        duplex_redis::RedisMode::Classic
                    };
                    socketio::install_cluster(url, mode, addr)?;
                }
                if let Some(url) = &recovery_redis {
                    socketio::install_recovery_cluster(url)?;
                }
                // A cluster node is one of several on a machine: a fixed
                // STOMP port would let only the first of them start.
                let clustered = redis.is_some() || recovery_redis.is_some();
                let stomp_addr = match (stomp_addr, clustered) {
                    (Some(addr), _) => Some(addr),
                    (None, false) => Some(SocketAddr::from(([127, 0, 0, 1], 61613))),
                    (None, true) => None,
                };
                sockjs_stomp::init(sockjs_stomp::Settings {
                    stomp_addr,
                    relay: stomp_relay,
                    conformance: true,
                    max_connections: limits.max_stomp_connections,
                })
                .await?;
                // Socket.IO clients are closed as Node's `io.close()` does
                // before the listener stops; the rest is dropped, as before.
                let stop = async {
                    first_signal(CONFORMANCE_SHUTDOWN).await;
                    let deadline = std::time::Instant::now() + CONFORMANCE_SHUTDOWN;
                    socketio::shutdown(deadline).await;
                    std::time::Instant::now()
                };
                http_server::run(
                    addr,
                    "duplex conformance server",
                    limits.max_connections,
                    &tls,
                    stop,
                )
                .await
            }
            Command::AutobahnClient { url, agent } => autobahn::run(&url, &agent).await,
            Command::Connect(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duplex: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How long `duplex conformance-server` waits for its Socket.IO disconnect
/// handlers at Ctrl-C or SIGTERM (the suites' scripts send SIGKILL 5 s
/// after SIGTERM).
const CONFORMANCE_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits for the first Ctrl-C or SIGTERM and says so; a second one exits at
/// once.
async fn first_signal(timeout: std::time::Duration) {
    let signal = shutdown_signal().await;
    tracing::info!("{signal}: shutting down (at most {timeout:?})");
    tokio::spawn(async {
        let again = shutdown_signal().await;
        eprintln!("duplex: {again} again: exiting now");
        std::process::exit(130);
    });
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM; returns the signal's name.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let terminate = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            () = terminate => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
