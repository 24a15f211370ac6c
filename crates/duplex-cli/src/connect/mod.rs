//! `duplex connect`: one command-line client for every protocol duplex
//! speaks. Each protocol module opens its connection through duplex-tokio's
//! public client API and runs one loop: stdin lines and Ctrl-C in, events
//! out through [`output::Out`]. Nothing here decides anything about a
//! protocol; it only translates between lines of text and the clients.

mod http;
mod input;
mod output;
mod socketio;
mod sockjs;
mod sse;
mod stomp;
mod tls;
mod ws;

use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;

pub(crate) use output::Out;

/// Examples shown under `duplex connect --help`.
const EXAMPLES: &str = "\
Examples:
  WebSocket (stdin lines out as text, messages in on stdout):
    duplex connect ws://127.0.0.1:8080/echo
    echo aGVsbG8= | duplex connect ws://127.0.0.1:8080/echo --binary base64
    duplex connect wss://example.org/feed --subprotocol chat --header 'Authorization: Bearer x' --jsonl
    duplex connect wss://127.0.0.1:8443/ --ca ca.pem     (or --insecure, with a warning)
  Socket.IO (namespace in the URL path; stdin lines are `event [json args]`):
    duplex connect --socketio http://127.0.0.1:8080/ --emit message-with-ack '\"hi\"' --ack </dev/null
    duplex connect --socketio http://127.0.0.1:8080/custom --transport websocket --auth '{\"token\":\"t\"}'
  STOMP (over TCP or WebSocket; stdin lines are `DESTINATION BODY`):
    duplex connect --stomp tcp://127.0.0.1:61613 --subscribe /topic/news --ack client
    duplex connect --stomp ws://127.0.0.1:8080/stomp --send /topic/news hello </dev/null
    duplex connect --stomp sockjs+http://127.0.0.1:8080/sockjs/stomp --transport polling --subscribe /topic/news
    duplex connect --stomp wss://broker.example.org/ws --login guest --passcode guest --subscribe /queue/jobs
  SockJS (transport from /info, or forced with --transport websocket|streaming|polling):
    duplex connect --sockjs http://127.0.0.1:8080/sockjs/echo --transport polling
  Server-Sent Events (resumes with Last-Event-ID after a drop):
    duplex connect --sse http://127.0.0.1:8080/sse/events --count 3

Exit codes: 0 done, 1 protocol error or connection refused, 2 usage.
When stdin ends the client finishes what is pending (acks, receipts, the
WebSocket close handshake), waits --wait seconds for more, and closes.";

/// Connect to a server as a client: WebSocket by default, or Socket.IO,
/// STOMP, SockJS or Server-Sent Events.
///
/// Lines read from stdin are sent; what arrives is printed on stdout, one
/// line each (or one JSON object each with --jsonl). Connection news goes
/// to stderr (or stdout as JSON objects with --jsonl), errors as one line
/// on stderr.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Args {
    /// The server: ws:// or wss:// for WebSocket; http://host:port[/namespace]
    /// with --socketio; tcp://host:port, ws://… or sockjs+http://… with
    /// --stomp; http://host:port/prefix with --sockjs; http://… with --sse.
    pub url: String,

    /// Speak Socket.IO (v5, Engine.IO v4) to the server at the URL.
    #[arg(long, conflicts_with_all = ["stomp", "sse", "sockjs"], help_heading = "Protocol")]
    pub socketio: bool,
    /// Speak STOMP (over TCP with tcp://, over WebSocket with ws:// or
    /// wss://, over SockJS with sockjs+http://).
    #[arg(long, conflicts_with_all = ["sse", "sockjs"], help_heading = "Protocol")]
    pub stomp: bool,
    /// Speak SockJS to the service at the URL (http://host:port/prefix).
    #[arg(long, conflicts_with = "sse", help_heading = "Protocol")]
    pub sockjs: bool,
    /// Read a Server-Sent Events stream (text/event-stream).
    #[arg(long, help_heading = "Protocol")]
    pub sse: bool,

    /// Print one JSON object a line (type, data, timestamp) instead of
    /// plain lines; connection news goes to stdout as objects too.
    #[arg(long, help_heading = "Output")]
    pub jsonl: bool,
    /// Print nothing but what arrives (no connection news on stderr).
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,
    /// Seconds the connection may take to open, and that each awaited
    /// answer (ack, receipt, close handshake) may take.
    #[arg(long, default_value_t = 10.0, help_heading = "Output")]
    pub timeout: f64,
    /// Close after this many received messages or events (the end of
    /// stdin then closes nothing: only the count, or Ctrl-C, does).
    #[arg(long, help_heading = "Output")]
    pub count: Option<u64>,
    /// Once stdin has ended and nothing is pending, keep receiving this many
    /// seconds before closing.
    #[arg(long, default_value_t = 0.0, help_heading = "Output")]
    pub wait: f64,

    /// Send and show binary messages, written in this encoding (stdin
    /// lines are decoded, received messages encoded). Bare --binary: base64.
    #[arg(long, num_args = 0..=1, default_missing_value = "base64", value_name = "ENCODING", help_heading = "WebSocket")]
    pub binary: Option<Encoding>,
    /// Offer this subprotocol (repeatable).
    #[arg(long, value_name = "NAME", help_heading = "WebSocket")]
    pub subprotocol: Vec<String>,
    /// An extra header `Name: value` (repeatable): on the WebSocket or SSE
    /// request, or on every STOMP SEND.
    #[arg(long, short = 'H', value_name = "K:V", help_heading = "WebSocket")]
    pub header: Vec<String>,
    /// Offer permessage-deflate.
    #[arg(long, help_heading = "WebSocket")]
    pub deflate: bool,
    /// Send a ping this often (seconds).
    #[arg(long, value_name = "SECS", help_heading = "WebSocket")]
    pub ping_interval: Option<f64>,
    /// The close code sent on end of input or Ctrl-C.
    #[arg(long, default_value_t = 1000, help_heading = "WebSocket")]
    pub close_code: u16,
    /// The close reason sent on end of input or Ctrl-C.
    #[arg(long, default_value = "", help_heading = "WebSocket")]
    pub close_reason: String,

    /// Emit EVENT with JSON arguments once connected (repeatable):
    /// --emit chat '"hi"' '{"to":"all"}'. `{"$base64":"…"}` is binary.
    #[arg(long, num_args = 1.., value_names = ["EVENT", "JSON"], help_heading = "Socket.IO")]
    pub emit: Vec<String>,
    /// `--emit` by occurrence (clap's derive flattens them; see
    /// [`Args::group_emits`]).
    #[arg(skip)]
    pub emits: Vec<Vec<String>>,
    /// Socket.IO: ask for an ack of every emit, wait for it and print it.
    /// STOMP: the ack mode of every --subscribe (auto, client,
    /// client-individual); messages are acknowledged once printed.
    #[arg(long, num_args = 0..=1, default_missing_value = "wait", value_name = "MODE", help_heading = "Socket.IO")]
    pub ack: Option<AckArg>,
    /// The Engine.IO transports.
    #[arg(
        long,
        value_enum,
        default_value = "upgrade",
        help_heading = "Socket.IO"
    )]
    pub transport: Transport,
    /// The CONNECT auth payload (JSON).
    #[arg(long, value_name = "JSON", help_heading = "Socket.IO")]
    pub auth: Option<String>,
    /// Do not reconnect when the connection drops (on by default).
    #[arg(long, help_heading = "Socket.IO")]
    pub no_reconnect: bool,

    /// Subscribe to DEST (repeatable).
    #[arg(long, value_name = "DEST", help_heading = "STOMP")]
    pub subscribe: Vec<String>,
    /// Send BODY to DEST once connected, and wait for its receipt
    /// (repeatable).
    #[arg(long, num_args = 2, value_names = ["DEST", "BODY"], help_heading = "STOMP")]
    pub send: Vec<String>,
    /// The `login` header of CONNECT.
    #[arg(long, help_heading = "STOMP")]
    pub login: Option<String>,
    /// The `passcode` header of CONNECT.
    #[arg(long, help_heading = "STOMP")]
    pub passcode: Option<String>,
    /// The virtual host (`host` header of CONNECT).
    #[arg(long, default_value = "/", help_heading = "STOMP")]
    pub vhost: String,
    /// Heart-beats `SEND,RECEIVE` in milliseconds (0: none).
    #[arg(
        long,
        default_value = "10000,10000",
        value_name = "MS,MS",
        help_heading = "STOMP"
    )]
    pub heart_beat: String,

    /// Also trust the CA certificates in this PEM file (wss://, https://);
    /// the system's roots are trusted in any case.
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub ca: Option<std::path::PathBuf>,
    /// Do not verify the server's certificate (wss://, https://); a
    /// warning says so.
    #[arg(long, help_heading = "TLS")]
    pub insecure: bool,

    /// Resume from this event id (sent as Last-Event-ID on the first
    /// request too).
    #[arg(long, value_name = "ID", help_heading = "Server-Sent Events")]
    pub last_event_id: Option<String>,
}

/// How binary payloads are written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Encoding {
    /// Standard base64 with padding.
    Base64,
    /// Lowercase hexadecimal (upper case accepted on input).
    Hex,
}

/// What `--ack` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AckArg {
    /// Socket.IO: wait for the ack of every emit (bare `--ack`).
    Wait,
    /// STOMP: the server counts messages consumed when it sends them.
    Auto,
    /// STOMP: cumulative ACKs.
    Client,
    /// STOMP: one ACK per message.
    ClientIndividual,
}

/// The Engine.IO transports `--transport` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// WebSocket only.
    Websocket,
    /// HTTP long-polling only.
    Polling,
    /// Long-polling first, then upgraded to WebSocket (SockJS: the best
    /// transport the server's /info allows).
    Upgrade,
    /// SockJS only: xhr_streaming.
    Streaming,
}

/// Why `duplex connect` stopped early; the variant picks the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line asks for something impossible (exit 2).
    Usage(String),
    /// The connection was refused or failed, or the peer broke the
    /// protocol (exit 1).
    Failed(String),
}

impl Failure {
    /// A usage error.
    pub(crate) fn usage(msg: impl std::fmt::Display) -> Failure {
        Failure::Usage(msg.to_string())
    }

    /// A connection or protocol failure.
    pub(crate) fn failed(msg: impl std::fmt::Display) -> Failure {
        Failure::Failed(msg.to_string())
    }
}

impl Args {
    /// Fills [`Args::emits`] from the matches of the `connect` subcommand,
    /// which still know where each `--emit` began.
    pub(crate) fn group_emits(&mut self, matches: &clap::ArgMatches) {
        self.emits = matches
            .get_occurrences::<String>("emit")
            .map(|occurrences| occurrences.map(|o| o.cloned().collect()).collect())
            .unwrap_or_default();
    }

    /// `--send` pairs.
    pub(crate) fn sends(&self) -> Vec<(String, String)> {
        self.send
            .chunks_exact(2)
            .filter_map(|pair| match pair {
                [dest, body] => Some((dest.clone(), body.clone())),
                _ => None,
            })
            .collect()
    }

    /// `--timeout` as a duration.
    pub(crate) fn timeout(&self) -> Result<Duration, Failure> {
        seconds("--timeout", self.timeout)
    }

    /// `--wait` as a duration.
    pub(crate) fn wait(&self) -> Result<Duration, Failure> {
        seconds("--wait", self.wait)
    }

    /// `--header` values split into names and values.
    pub(crate) fn headers(&self) -> Result<Vec<(String, String)>, Failure> {
        self.header
            .iter()
            .map(|h| {
                let (k, v) = h.split_once(':').ok_or_else(|| {
                    Failure::usage(format!("--header {h:?}: expected NAME:VALUE"))
                })?;
                let k = k.trim();
                if k.is_empty() {
                    return Err(Failure::usage(format!("--header {h:?}: empty name")));
                }
                Ok((k.to_owned(), v.trim().to_owned()))
            })
            .collect()
    }

    /// Whether the end of stdin starts the end of the run: not when the
    /// run waits for `--count` arrivals.
    pub(crate) fn eof_closes(&self) -> bool {
        self.count.is_none()
    }

    /// Whether `--count` is reached after `received` arrivals.
    pub(crate) fn count_reached(&self, received: u64) -> bool {
        self.count.is_some_and(|n| received >= n)
    }
}

/// A non-negative, finite number of seconds as a duration.
fn seconds(flag: &str, secs: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(secs).map_err(|e| Failure::usage(format!("{flag}: {e}")))
}

/// Runs `duplex connect` to its end and returns the exit code.
pub(crate) fn main(args: Args) -> ExitCode {
    let out = Out::new(args.jsonl, args.quiet);
    // One thread is plenty for one connection, and keeps the order of
    // what is printed the order of arrival.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("duplex connect: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        if args.socketio {
            socketio::run(&args, &out).await
        } else if args.stomp {
            stomp::run(&args, &out).await
        } else if args.sse {
            sse::run(&args, &out).await
        } else if args.sockjs {
            sockjs::run(&args, &out).await
        } else {
            ws::run(&args, &out).await
        }
    });
    // The Socket.IO manager's tasks may still hold sockets; do not wait
    // for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("duplex connect: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("duplex connect: {msg}");
            ExitCode::from(1)
        }
    }
}
