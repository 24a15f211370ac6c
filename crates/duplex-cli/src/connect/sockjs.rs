//! `duplex connect --sockjs http(s)://…/prefix`: stdin lines out as messages,
//! messages in on stdout, over the transport `/info` allows or the one
//! forced with `--transport`. Frames, paths and batching are
//! duplex-polling's [`SockJsClient`]; this module opens the requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use duplex_polling::{SockJsClient, SockJsClientEvent, SockJsClientTransport};
use duplex_tokio::ws::Message;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_rustls::rustls;

use super::input::{Input, UserEvent};
use super::{Args, Failure, Out, Transport};

type HttpClient = super::http::HttpClient<Full<Bytes>>;

/// What the receiving side reports to the loop.
enum Received {
    /// Bytes of a response (xhr, xhr_streaming) or one WebSocket frame.
    Bytes(Bytes),
    /// A receiving response ended; the next one is being opened.
    Ended,
    /// The transport failed.
    Failed(String),
}

/// Runs the SockJS client until input ends (and `--wait` passes), the
/// server closes the session, or `--count` messages arrived.
pub(super) async fn run(args: &Args, out: &Out) -> Result<(), Failure> {
    let timeout = args.timeout()?;
    let wait = args.wait()?;
    let tls = super::tls::config_for(&args.url, args, out)?;
    let mut conn = SockJsConn::open(&args.url, args.transport, timeout, tls).await?;
    out.news(
        "open",
        json!({"url": args.url, "transport": conn.transport_name()}),
        &format!("connected to {} ({})", args.url, conn.transport_name()),
    );
    let mut input = Input::new(out).ending_after_eof(args.eof_closes().then_some(wait));
    let mut received = 0u64;
    let result = loop {
        tokio::select! {
            event = conn.next_event() => match event {
                Ok(SockJsClientEvent::Message(text)) => {
                    out.data("message", json!({"data": text}), &text);
                    received += 1;
                    if args.count_reached(received) {
                        break Ok(());
                    }
                }
                Ok(SockJsClientEvent::Closed { code, reason }) => {
                    out.news(
                        "close",
                        json!({"code": code, "reason": reason}),
                        &format!("closed by the server ({code} {reason})"),
                    );
                    break Ok(());
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            },
            event = input.next() => match event {
                UserEvent::Line(line) => {
                    if let Err(e) = conn.send(&line).await {
                        break Err(e);
                    }
                }
                UserEvent::Eof => {}
                UserEvent::Interrupt | UserEvent::Ended => break Ok(()),
            },
        }
    };
    conn.close().await;
    result
}

/// An open SockJS session: the sans-IO client plus the task that receives
/// for it.
pub(super) struct SockJsConn {
    client: SockJsClient,
    rx: mpsc::Receiver<Received>,
    /// The WebSocket task's queue of batches (WebSocket transport only).
    ws_out: Option<mpsc::Sender<String>>,
    receiver: tokio::task::JoinHandle<()>,
    http: HttpClient,
    send_url: String,
    timeout: Duration,
}

impl SockJsConn {
    /// Opens a session of the service at `url` (`http://host:port/prefix`,
    /// or https:// with `tls`) and waits (at most `timeout`) for its open
    /// frame.
    pub(super) async fn open(
        url: &str,
        transport: Transport,
        timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<SockJsConn, Failure> {
        let base: http::Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| Failure::usage(format!("{url}: {e}")))?;
        let (scheme, ws_scheme) = match (base.scheme_str(), &tls) {
            (Some("http"), _) => ("http", "ws"),
            (Some("https"), Some(_)) => ("https", "wss"),
            _ => {
                return Err(Failure::usage(format!(
                    "{url}: SockJS wants an http:// or https:// URL"
                )));
            }
        };
        let authority = base
            .authority()
            .ok_or_else(|| Failure::usage(format!("{url}: no host")))?
            .to_string();
        let prefix = base.path().trim_end_matches('/').to_owned();
        let http = HttpClient::new(tls.clone());
        let transport = match transport {
            Transport::Websocket => SockJsClientTransport::WebSocket,
            Transport::Polling => SockJsClientTransport::XhrPolling,
            Transport::Streaming => SockJsClientTransport::XhrStreaming,
            Transport::Upgrade => {
                let info_url = format!("{scheme}://{authority}{prefix}/info");
                let info = request(&http, "GET", &info_url, None, timeout).await?;
                let info: serde_json::Value = serde_json::from_slice(&info)
                    .map_err(|e| Failure::failed(format!("{info_url}: {e}")))?;
                if info.get("websocket").and_then(serde_json::Value::as_bool) == Some(true) {
                    SockJsClientTransport::WebSocket
                } else {
                    SockJsClientTransport::XhrStreaming
                }
            }
        };
        let client = SockJsClient::new(&prefix, transport, &mut rand::rng());
        let (tx, rx) = mpsc::channel::<Received>(64);
        let (receiver, ws_out) = match transport {
            SockJsClientTransport::WebSocket => {
                let ws_url = format!("{ws_scheme}://{authority}{}", client.receive_path());
                let config = duplex_tokio::ClientConfig {
                    handshake_timeout: timeout,
                    tls,
                    ..duplex_tokio::ClientConfig::default()
                };
                let (ws, _) = duplex_tokio::connect_with(&ws_url, config)
                    .await
                    .map_err(|e| Failure::failed(format!("{ws_url}: {e}")))?;
                let (ws_out, ws_out_rx) = mpsc::channel::<String>(64);
                (
                    tokio::spawn(websocket_task(ws, tx, ws_out_rx)),
                    Some(ws_out),
                )
            }
            _ => {
                let poll_url = format!("{scheme}://{authority}{}", client.receive_path());
                // A poll is answered only when there is something to say:
                // at the latest the server's heartbeat, 25 s by default.
                let poll_timeout = timeout.max(Duration::from_secs(35));
                (
                    tokio::spawn(xhr_task(http.clone(), poll_url, tx, poll_timeout)),
                    None,
                )
            }
        };
        let send_url = format!("{scheme}://{authority}{}", client.send_path());
        let mut conn = SockJsConn {
            client,
            rx,
            ws_out,
            receiver,
            http,
            send_url,
            timeout,
        };
        // xhr_streaming's prelude reads as a heartbeat before the open.
        let opened = tokio::time::timeout(timeout, async {
            loop {
                match conn.next_event().await {
                    Ok(SockJsClientEvent::Heartbeat) => {}
                    other => return other,
                }
            }
        })
        .await;
        match opened {
            Ok(Ok(SockJsClientEvent::Open)) => Ok(conn),
            Ok(Ok(SockJsClientEvent::Closed { code, reason })) => {
                conn.close().await;
                Err(Failure::failed(format!(
                    "{url}: closed at once ({code} {reason})"
                )))
            }
            Ok(Ok(other)) => {
                conn.close().await;
                Err(Failure::failed(format!(
                    "{url}: {other:?} before the open frame"
                )))
            }
            Ok(Err(e)) => {
                conn.close().await;
                Err(e)
            }
            Err(_) => {
                conn.close().await;
                Err(Failure::failed(format!(
                    "{url}: no open frame within {timeout:?}"
                )))
            }
        }
    }

    /// The transport's path segment (`websocket`, `xhr_streaming`, `xhr`).
    pub(super) fn transport_name(&self) -> &'static str {
        self.client.transport().path_segment()
    }

    /// The next event. Cancel-safe: what arrived is fed to the client as
    /// soon as it is received.
    pub(super) async fn next_event(&mut self) -> Result<SockJsClientEvent, Failure> {
        loop {
            if let Some(event) = self.client.poll_event() {
                return Ok(event);
            }
            match self.rx.recv().await {
                Some(Received::Bytes(bytes)) => {
                    let fed = if self.client.transport() == SockJsClientTransport::WebSocket {
                        match std::str::from_utf8(&bytes) {
                            Ok(frame) => self.client.handle_frame(frame),
                            Err(_) => Err(duplex_polling::Error::BrokenJson),
                        }
                    } else {
                        self.client.receive(&bytes)
                    };
                    fed.map_err(|e| Failure::failed(format!("not SockJS: {e}")))?;
                }
                Some(Received::Ended) => self.client.handle_stream_end(),
                Some(Received::Failed(e)) => return Err(Failure::failed(e)),
                None => return Err(Failure::failed("the connection closed")),
            }
        }
    }

    /// Sends one message (over the WebSocket, or as a POST to `xhr_send`).
    pub(super) async fn send(&mut self, text: &str) -> Result<(), Failure> {
        self.client
            .send(text)
            .map_err(|e| Failure::failed(format!("not sent: {e}")))?;
        let Some(batch) = self.client.poll_transmit() else {
            return Ok(());
        };
        match &self.ws_out {
            Some(ws_out) => ws_out
                .send(batch)
                .await
                .map_err(|_| Failure::failed("the WebSocket closed")),
            None => request(
                &self.http,
                "POST",
                &self.send_url,
                Some(batch),
                self.timeout,
            )
            .await
            .map(|_| ()),
        }
    }

    /// Ends the session: the WebSocket closes with 1000; a polling
    /// transport just stops (the server expires the session).
    pub(super) async fn close(self) {
        match self.ws_out {
            Some(ws_out) => {
                // Dropping the sender makes the task close the WebSocket.
                drop(ws_out);
                let _ = tokio::time::timeout(self.timeout, self.receiver).await;
            }
            None => self.receiver.abort(),
        }
    }
}

/// Owns the WebSocket: frames in to `tx`, batches from `sends` out; closes
/// with 1000 once `sends` is dropped.
async fn websocket_task(
    mut ws: duplex_tokio::WebSocketStream<duplex_tokio::ClientIo>,
    tx: mpsc::Sender<Received>,
    mut sends: mpsc::Receiver<String>,
) {
    loop {
        tokio::select! {
            message = ws.next() => {
                let report = match message {
                    Some(Ok(message)) => Received::Bytes(Bytes::copy_from_slice(message.as_bytes())),
                    Some(Err(e)) => Received::Failed(e.to_string()),
                    None => Received::Failed("the WebSocket closed".into()),
                };
                let last = matches!(report, Received::Failed(_));
                if tx.send(report).await.is_err() || last {
                    return;
                }
            }
            batch = sends.recv() => match batch {
                Some(batch) => {
                    if ws.send(Message::from(batch)).await.is_err() {
                        let _ = tx.send(Received::Failed("the WebSocket failed".into())).await;
                        return;
                    }
                }
                None => {
                    let _ = ws.close().await;
                    return;
                }
            },
        }
    }
}

/// Reopens the `xhr` or `xhr_streaming` request each time it ends, and
/// passes every chunk on.
async fn xhr_task(http: HttpClient, url: String, tx: mpsc::Sender<Received>, timeout: Duration) {
    loop {
        let response = match open(&http, "POST", &url, None, timeout).await {
            Ok(response) => response,
            Err(Failure::Usage(e) | Failure::Failed(e)) => {
                let _ = tx.send(Received::Failed(e)).await;
                return;
            }
        };
        if !response.status().is_success() {
            let _ = tx
                .send(Received::Failed(format!(
                    "{url}: HTTP {}",
                    response.status()
                )))
                .await;
            return;
        }
        let mut body = response.into_body();
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if tx.send(Received::Bytes(data)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(Received::Failed(format!("{url}: {e}"))).await;
                    return;
                }
                None => break,
            }
        }
        if tx.send(Received::Ended).await.is_err() {
            return;
        }
    }
}

/// One request, its whole body back; a status other than 2xx fails.
async fn request(
    http: &HttpClient,
    method: &str,
    url: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<Bytes, Failure> {
    let response = open(http, method, url, body, timeout).await?;
    let status = response.status();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| Failure::failed(format!("{url}: no answer within {timeout:?}")))?
        .map_err(|e| Failure::failed(format!("{url}: {e}")))?
        .to_bytes();
    if !status.is_success() {
        return Err(Failure::failed(format!(
            "{url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    Ok(body)
}

/// Sends a request and waits (at most `timeout`) for the response head.
async fn open(
    http: &HttpClient,
    method: &str,
    url: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<http::Response<hyper::body::Incoming>, Failure> {
    let mut builder = http::Request::builder().method(method).uri(url);
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    tokio::time::timeout(timeout, http.request(request))
        .await
        .map_err(|_| Failure::failed(format!("{url}: no answer within {timeout:?}")))?
}

/// Carries a byte stream over a SockJS session, for protocols whose frames
/// delimit themselves (STOMP over SockJS): the other end of `io` is handed
/// to a byte-stream client. Bytes read from `io` go out as text messages
/// (cut at character boundaries: SockJS carries text); messages received
/// are written to `io`. Ends, closing the session, when either side does.
pub(super) async fn bridge(mut conn: SockJsConn, io: tokio::io::DuplexStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut buf = vec![0u8; 16 * 1024];
    // Bytes of a character cut by the read.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                pending.extend_from_slice(buf.get(..n).unwrap_or_default());
                let valid = match std::str::from_utf8(&pending) {
                    Ok(text) => text.len(),
                    // Only a character cut at the end may wait for more.
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => break,
                };
                if valid == 0 {
                    continue;
                }
                let text: Vec<u8> = pending.drain(..valid).collect();
                let Ok(text) = String::from_utf8(text) else { break };
                if conn.send(&text).await.is_err() {
                    break;
                }
            }
            event = conn.next_event() => match event {
                Ok(SockJsClientEvent::Message(text)) => {
                    if writer.write_all(text.as_bytes()).await.is_err() {
                        break;
                    }
                }
                Ok(SockJsClientEvent::Closed { .. }) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    let _ = writer.shutdown().await;
    conn.close().await;
}
