//! `duplex connect --sse http(s)://…`: prints a Server-Sent Events stream and
//! resumes it with `Last-Event-ID` after a drop. The parsing is
//! duplex-polling's [`SseParser`]; this module only moves bytes and waits.

use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_polling::{SseEvent, SseParser};
use http_body_util::{BodyExt, Empty};
use serde_json::json;

use super::{Args, Failure, Out};

/// How long to wait before reconnecting when the server never said
/// (`retry:`); what browsers commonly use.
const DEFAULT_RETRY: Duration = Duration::from_secs(3);

type HttpClient = super::http::HttpClient<Empty<Bytes>>;

/// Reads the stream until `--count` events, Ctrl-C, or a 204 (the
/// server's "stop"); reconnects after drops.
pub(super) async fn run(args: &Args, out: &Out) -> Result<(), Failure> {
    let uri: http::Uri = args
        .url
        .parse()
        .map_err(|e| Failure::usage(format!("{}: {e}", args.url)))?;
    let tls = match uri.scheme_str() {
        Some("http") => None,
        Some("https") => Some(super::tls::config(args, out)?),
        _ => {
            return Err(Failure::usage(format!(
                "{}: --sse wants an http:// or https:// URL",
                args.url
            )));
        }
    };
    let headers = args.headers()?;
    let timeout = args.timeout()?;
    let mut parser = SseParser::new();
    if let Some(id) = &args.last_event_id {
        parser.set_last_event_id(id);
    }
    let client = HttpClient::new(tls);
    let session = Session {
        args,
        out,
        client,
        uri,
        headers,
        timeout,
    };
    tokio::select! {
        result = session.run(&mut parser) => result,
        _ = tokio::signal::ctrl_c() => {
            out.news("close", json!({"last_event_id": parser.last_event_id()}), "interrupted");
            Ok(())
        }
    }
}

/// What every (re)connection needs.
struct Session<'a> {
    args: &'a Args,
    out: &'a Out,
    client: HttpClient,
    uri: http::Uri,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl Session<'_> {
    async fn run(&self, parser: &mut SseParser) -> Result<(), Failure> {
        let mut received = 0u64;
        let mut connected_once = false;
        // When the stream last dropped: reconnecting may take --timeout.
        let mut dropped_at: Option<Instant> = None;
        loop {
            match self.open(parser.last_event_id()).await {
                Ok(response) => {
                    let status = response.status();
                    if status == http::StatusCode::NO_CONTENT {
                        // The standard's way for a server to say "stop".
                        self.out.news(
                            "close",
                            json!({"status": 204, "last_event_id": parser.last_event_id()}),
                            "the server ended the stream (204)",
                        );
                        return Ok(());
                    }
                    if status != http::StatusCode::OK {
                        return Err(Failure::failed(format!("{}: HTTP {status}", self.uri)));
                    }
                    let content_type = response
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !content_type.starts_with("text/event-stream") {
                        return Err(Failure::failed(format!(
                            "{}: not an event stream (content-type {content_type:?})",
                            self.uri
                        )));
                    }
                    let id = parser.last_event_id();
                    self.out.news(
                        "open",
                        json!({"url": self.uri.to_string(), "last_event_id": id}),
                        &if id.is_empty() {
                            format!("connected to {}", self.uri)
                        } else {
                            format!("connected to {} (resuming after {id})", self.uri)
                        },
                    );
                    connected_once = true;
                    dropped_at = None;
                    let mut body = response.into_body();
                    let why = loop {
                        match body.frame().await {
                            Some(Ok(frame)) => {
                                let Ok(data) = frame.into_data() else {
                                    continue;
                                };
                                parser.receive(&data).map_err(Failure::failed)?;
                                while let Some(event) = parser.poll_event() {
                                    print_event(self.out, &event);
                                    received += 1;
                                    if self.args.count_reached(received) {
                                        return Ok(());
                                    }
                                }
                            }
                            Some(Err(e)) => break format!("stream dropped: {e}"),
                            None => break "stream ended".to_owned(),
                        }
                    };
                    parser.reconnect();
                    self.out.news(
                        "drop",
                        json!({"reason": why, "last_event_id": parser.last_event_id()}),
                        &format!("{why}; reconnecting"),
                    );
                }
                Err(e) => {
                    if !connected_once {
                        return Err(e);
                    }
                    let since = *dropped_at.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.timeout {
                        return Err(e);
                    }
                }
            }
            dropped_at.get_or_insert_with(Instant::now);
            tokio::time::sleep(parser.retry().unwrap_or(DEFAULT_RETRY)).await;
        }
    }

    /// One GET for the stream, with `Last-Event-ID` when there is one.
    async fn open(
        &self,
        last_event_id: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, Failure> {
        let mut request = http::Request::get(self.uri.clone())
            .header(http::header::ACCEPT, "text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if !last_event_id.is_empty() {
            request = request.header("last-event-id", last_event_id);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| Failure::usage(format!("bad request: {e}")))?;
        tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| {
                Failure::failed(format!("{}: no answer within {:?}", self.uri, self.timeout))
            })?
    }
}

/// Prints an event as the stream spelled it (`id:`, `event:`, one `data:`
/// line each, a blank line), or as a record.
fn print_event(out: &Out, event: &SseEvent) {
    let mut plain = String::new();
    if !event.id.is_empty() {
        plain.push_str(&format!("id: {}\n", event.id));
    }
    plain.push_str(&format!("event: {}\n", event.event));
    for line in event.data.split('\n') {
        plain.push_str(&format!("data: {line}\n"));
    }
    out.data(
        "event",
        json!({"id": event.id, "event": event.event, "data": event.data}),
        &plain,
    );
}
