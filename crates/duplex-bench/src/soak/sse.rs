//! The Server-Sent Events client of the soak: the demo's chat over
//! `/sse/events` (down) and `POST /sse/send` (up), with `Last-Event-ID`
//! reconnections in the middle of the stream.
//!
//! One session: open the stream (its first event names the session), join
//! the worker's room, say numbered messages, read them back; a killed
//! session drops its stream half way and reconnects with the last id it
//! saw, and the rest must arrive, each number exactly once, none repeated
//! from before the drop. A session ends by closing its stream (SSE has no
//! close of its own: the server drops the session after its 30 s
//! reconnection delay).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::SoakConfig;
use super::web::{Http, Lines, open_owned};

/// Reconnections one session may need (a killed one needs one; a stream
/// ended by the server's 128 KiB response limit one more).
const MAX_STREAMS: usize = 5;

/// Rooms per worker.
const ROOMS: u64 = 32;

/// One event of the stream.
#[derive(Debug, Default)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Reads events from an open stream.
struct Events {
    lines: Lines,
}

impl Events {
    /// Opens the stream on a connection of its own (closed when the
    /// events are dropped: the kill).
    async fn open(host: &str, last_id: Option<&str>) -> Result<Events, String> {
        let mut headers = vec![("accept", "text/event-stream")];
        if let Some(id) = last_id {
            headers.push(("last-event-id", id));
        }
        let (status, lines) = open_owned(host, http::Method::GET, "/sse/events", &headers).await?;
        if status != http::StatusCode::OK {
            return Err(format!("GET /sse/events: {status}"));
        }
        Ok(Events { lines })
    }

    /// The next event; `Ok(None)` when the stream ends.
    async fn next(&mut self) -> Result<Option<SseEvent>, String> {
        let mut event = SseEvent::default();
        let mut any = false;
        while let Some(line) = self.lines.next().await? {
            if line.is_empty() {
                if any {
                    return Ok(Some(event));
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = Some(value.to_owned()),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                // `retry:` and comments (heart-beats).
                _ => continue,
            }
            any = true;
        }
        Ok(None)
    }
}

/// Posts one chat command for session `sid`.
async fn send(http: &Http, base: &str, sid: &str, command: Value) -> Result<(), String> {
    let url = format!("{base}/sse/send?session={sid}");
    let (status, body) = http
        .post(&url, "application/json", command.to_string())
        .await?;
    if status != http::StatusCode::NO_CONTENT {
        return Err(format!(
            "POST /sse/send: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

/// One SSE session of worker `w`; returns the messages received.
pub(super) async fn session(
    config: &SoakConfig,
    w: usize,
    n: u64,
    kill: bool,
) -> Result<u64, String> {
    let base = config.url.trim_end_matches('/');
    let host = base.trim_start_matches("http://");
    let http = Http::new();
    let mut events = Events::open(host, None).await?;
    let hello = events
        .next()
        .await?
        .ok_or("the stream ended before its first event")?;
    if hello.event.as_deref() != Some("session") {
        return Err(format!("first event: {hello:?}"));
    }
    let sid = serde_json::from_str::<Value>(&hello.data)
        .ok()
        .and_then(|v| v.get("session")?.as_str().map(str::to_owned))
        .ok_or_else(|| format!("no session in {:?}", hello.data))?;
    let mut last_id = hello.id.clone();
    // The worker's sessions take turns over ROOMS rooms of their own (the
    // demo keeps at most 256 rooms, for ever): a session's member stays in
    // its room until the server drops it 30 s after its stream closed, and
    // every join sends the whole member list to every member of the room,
    // so one room would gather hundreds of such members and multiply the
    // events (see docs/reliability.md).
    let room = format!("soak-sse-{w}-{}", n % ROOMS);
    send(
        &http,
        base,
        &sid,
        json!({"type": "join", "room": room, "name": "soak"}),
    )
    .await?;
    let tag = format!("{w}-{n}:");
    let total = config.messages;
    for i in 0..total {
        send(
            &http,
            base,
            &sid,
            json!({"type": "say", "text": format!("{tag}{i}")}),
        )
        .await?;
    }
    let mut seen = BTreeSet::new();
    let mut streams = 1;
    let mut dropped = false;
    while seen.len() < total as usize {
        if kill && !dropped && seen.len() >= total as usize / 2 {
            // Killed mid-stream: the connection goes without a word; the
            // session must resume after the last id seen.
            dropped = true;
            drop(events);
            events = reopen(host, last_id.as_deref(), &mut streams).await?;
            continue;
        }
        let Some(event) = events.next().await? else {
            // The server ended the stream (its response limit): resume.
            events = reopen(host, last_id.as_deref(), &mut streams).await?;
            continue;
        };
        if event.id.is_some() {
            last_id = event.id.clone();
        }
        let Ok(doc) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        if doc.get("type").and_then(Value::as_str) != Some("message") {
            continue;
        }
        let Some(number) = doc
            .get("text")
            .and_then(Value::as_str)
            .and_then(|t| t.strip_prefix(tag.as_str()))
        else {
            continue;
        };
        let number: u32 = number
            .parse()
            .map_err(|_| format!("a message that is no number: {doc}"))?;
        if !seen.insert(number) {
            return Err(format!(
                "message {number} twice (after {} streams)",
                streams
            ));
        }
    }
    if seen != (0..total).collect() {
        return Err(format!("received {:?}", seen));
    }
    // The stream closes here; the server keeps the session 30 s for a
    // reconnection, then drops it (SSE has no close of the client's).
    Ok(seen.len() as u64)
}

async fn reopen(host: &str, last_id: Option<&str>, streams: &mut usize) -> Result<Events, String> {
    *streams += 1;
    if *streams > MAX_STREAMS {
        return Err(format!("{MAX_STREAMS} streams and still not all messages"));
    }
    let last_id = last_id.ok_or("no event id to resume from")?;
    Events::open(host, Some(last_id)).await
}
