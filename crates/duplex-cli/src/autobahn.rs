//! Drives Autobahn|Testsuite's fuzzingserver with the duplex client.

use futures_util::{SinkExt, StreamExt};

/// Runs every case against the fuzzingserver at `base`, then has it write
/// its reports.
pub(crate) async fn run(base: &str, agent: &str) -> Result<(), Box<dyn std::error::Error>> {
    let base = base.trim_end_matches('/');
    let count = case_count(base).await?;
    println!("autobahn-client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let config = duplex_tokio::ClientConfig {
            deflate: Some(Default::default()),
            ..Default::default()
        };
        match duplex_tokio::connect_with(&url, config).await {
            Ok((mut ws, _)) => {
                while let Some(Ok(msg)) = ws.next().await {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => eprintln!("autobahn-client: case {case}: {e}"),
        }
    }
    let (mut ws, _) = duplex_tokio::connect(&format!("{base}/updateReports?agent={agent}")).await?;
    while ws.next().await.is_some() {}
    println!("autobahn-client: reports updated");
    Ok(())
}

async fn case_count(base: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let (mut ws, _) = duplex_tokio::connect(&format!("{base}/getCaseCount")).await?;
    let mut count = None;
    while let Some(msg) = ws.next().await {
        if let duplex_ws::Message::Text(text) = msg? {
            count = Some(text.as_str().trim().parse()?);
        }
    }
    count.ok_or_else(|| "fuzzingserver sent no case count".into())
}
