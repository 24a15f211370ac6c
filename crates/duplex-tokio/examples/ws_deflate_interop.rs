//! The duplex WebSocket client with permessage-deflate against any echo
//! server: checks that compression was agreed and that every message comes
//! back unchanged, in each deflate configuration the client can offer.
//!
//! ```text
//! cargo run --release -p duplex-tokio --example ws_deflate_interop -- ws://127.0.0.1:PORT/
//! ```
//!
//! Prints `ws-deflate duplex-client: N passed, N failed` and exits non-zero
//! on a failure. `scripts/conformance/suite-15-ws-deflate.sh` runs it
//! against npm `ws`.

use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::ws::{DeflateConfig, Message};
use duplex_tokio::{ClientConfig, Error};
use futures_util::{SinkExt, StreamExt};

fn messages() -> Vec<(&'static str, Message)> {
    let binary: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    vec![
        ("short text", Message::from("hello")),
        ("empty text", Message::from("")),
        (
            "UTF-8 beyond the BMP and U+2028",
            Message::from("𝄞 κόσμε \u{2028} end"),
        ),
        (
            "JSON chat",
            Message::from(format!(
                "{{\"type\":\"chat\",\"room\":\"general\",\"text\":\"{}\"}}",
                "hello, everyone ".repeat(20)
            )),
        ),
        ("64 KiB binary", Message::Binary(binary.into())),
        ("1 MiB text", Message::from("duplex ".repeat(150_000))),
        ("empty binary", Message::Binary(Bytes::new())),
    ]
}

async fn run(
    url: &str,
    name: &str,
    deflate: DeflateConfig,
    failures: &mut Vec<String>,
) -> Result<usize, Error> {
    let config = ClientConfig {
        deflate: Some(deflate),
        ..ClientConfig::default()
    };
    let (mut ws, response) = duplex_tokio::connect_with(url, config).await?;
    let mut passed = 0;
    let mut check = |ok: bool, what: String| {
        if ok {
            passed += 1;
        } else {
            failures.push(format!("{name}: {what}"));
        }
    };
    check(
        ws.connection().is_deflate_enabled(),
        format!("negotiated ({:?})", response.extensions),
    );
    for (what, message) in messages() {
        ws.send(message.clone()).await?;
        let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        check(
            matches!(echoed, Ok(Some(Ok(ref m))) if *m == message),
            format!("{what} echoed"),
        );
    }
    // One message the application chose not to compress.
    ws.connection().send_uncompressed("sent uncompressed")?;
    ws.flush().await?;
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    check(
        matches!(echoed, Ok(Some(Ok(ref m))) if *m == Message::from("sent uncompressed")),
        "uncompressed message echoed".into(),
    );
    ws.close().await?;
    check(ws.peer_close().is_some(), "clean close".into());
    Ok(passed)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: ws_deflate_interop ws://HOST:PORT/PATH");
        return std::process::ExitCode::from(2);
    };
    let configs = [
        ("defaults", DeflateConfig::default()),
        (
            "no context takeover",
            DeflateConfig {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                ..DeflateConfig::default()
            },
        ),
        (
            "small windows",
            DeflateConfig {
                server_max_window_bits: 10,
                client_max_window_bits: 9,
                ..DeflateConfig::default()
            },
        ),
    ];
    let mut passed = 0;
    let mut failures = Vec::new();
    for (name, deflate) in configs {
        match run(&url, name, deflate, &mut failures).await {
            Ok(n) => passed += n,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    println!(
        "ws-deflate duplex-client: {passed} passed, {} failed",
        failures.len()
    );
    if failures.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
