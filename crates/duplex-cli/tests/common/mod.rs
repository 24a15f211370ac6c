//! `duplex serve` for the binary's tests: the built binary in a subprocess
//! on free loopback ports, its addresses read from what it prints, killed
//! when dropped. Every wait is bounded.

// Each test binary uses its own part of this module.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The built `duplex` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_duplex");

/// How long `duplex serve` may take to print its addresses.
const START: Duration = Duration::from_secs(20);

/// `duplex serve` on free loopback ports, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:PORT` of the HTTP listener.
    pub addr: String,
    /// `127.0.0.1:PORT` of the STOMP-over-TCP listener.
    pub stomp_addr: String,
    /// The line that announced the HTTP listener's URL.
    pub url_line: String,
    /// Lines printed between the STOMP line and the URL line.
    pub notes: Vec<String>,
}

impl Server {
    /// Starts `duplex serve` with its default options.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts `duplex serve` with `extra` options after the addresses.
    pub fn start_with(extra: &[&str]) -> Server {
        let (child, lines) = spawn("serve", extra);
        let stomp_line = lines
            .recv_timeout(START)
            .expect("duplex serve printed no STOMP line");
        let stomp_addr = stomp_line
            .strip_prefix("STOMP over TCP on ")
            .unwrap_or_else(|| panic!("not the STOMP line: {stomp_line:?}"))
            .to_owned();
        // Notes (a self-signed certificate) may come before the URL line.
        let mut notes = Vec::new();
        let (line, addr) = loop {
            let line = lines
                .recv_timeout(START)
                .expect("duplex serve printed no URL line");
            let url = line.split_whitespace().find_map(|w| {
                w.strip_prefix("http://")
                    .or_else(|| w.strip_prefix("https://"))
            });
            match url {
                Some(url) => {
                    let addr = url.trim_end_matches('/').to_owned();
                    break (line, addr);
                }
                None => notes.push(line),
            }
        };
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Server {
            child,
            addr,
            stomp_addr,
            url_line: line,
            notes,
        }
    }

    /// `scheme://ADDR/path` on the HTTP listener.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Sends SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) {
        interrupt(&self.child);
    }

    /// Waits for the process to exit; fails the test after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "duplex serve still running {limit:?} after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `duplex SUBCOMMAND` on free loopback ports (HTTP and STOMP)
/// with `extra` options after the addresses; returns the process and the
/// lines of its stdout.
pub fn spawn(subcommand: &str, extra: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(BIN)
        .args([
            subcommand,
            "--addr",
            "127.0.0.1:0",
            "--stomp-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start duplex {subcommand}: {e}"));
    let lines = lines_of(child.stdout.take().expect("stdout"));
    (child, lines)
}

/// Sends SIGINT to `child`, as Ctrl-C would.
pub fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// The lines of a pipe, as they come, on a channel.
pub fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
