//! Chat members on each transport: a task per member moves the hub's
//! outbox to its connection and the connection's messages to the hub, and
//! closes the connection its protocol's way when the hub lets go (server
//! shutdown, or a member too slow to keep up).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::socketio::{self, AckSender, Args, NamespaceHandlers, Socket, Value};
use duplex_tokio::sockjs::{CloseReason, SockJsSocket};
use duplex_tokio::sse::SseSession;
use duplex_ws::CloseCode;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::chat::{Hub, MemberId, Outgoing, Refusal};
use super::{DemoBody, STATS, TASKS, Transport, text};

/// The longest a closing handshake may take before the connection is
/// dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Most bytes of one `POST /sse/send` body.
const SEND_BODY_LIMIT: usize = 64 * 1024;

/// `/ws`: the page's plain WebSocket, one JSON chat message per text
/// message, permessage-deflate when the browser offers it.
pub(super) fn websocket_upgrade(hub: Arc<Hub>, req: &mut Request<Incoming>) -> Response<DemoBody> {
    let config = duplex_tokio::ServerConfig {
        deflate: Some(Default::default()),
        ..Default::default()
    };
    match duplex_tokio::upgrade(req, config, None) {
        Ok((response, upgrade)) => {
            TASKS.spawn(async move {
                match upgrade.await {
                    Ok(ws) => websocket_member(hub, ws).await,
                    Err(e) => tracing::debug!("chat WebSocket upgrade failed: {e}"),
                }
            });
            response.map(|()| Full::new(Bytes::new()).boxed())
        }
        Err(e) => e
            .http_response()
            .map(|body| Full::new(Bytes::from(body)).boxed()),
    }
}

/// The close a member's connection gets when the hub lets go of it.
fn farewell(hub: &Hub) -> (CloseCode, &'static str) {
    if hub.is_closing() {
        (CloseCode::GOING_AWAY, "server shutting down")
    } else {
        (CloseCode::POLICY_VIOLATION, "too slow")
    }
}

async fn websocket_member<S>(hub: Arc<Hub>, mut ws: duplex_tokio::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _open = STATS.open(Transport::WebSocket);
    let Some((id, mut outbox)) = hub.register(Transport::WebSocket) else {
        let _ = tokio::time::timeout(
            CLOSE_TIMEOUT,
            ws.close_with(CloseCode::GOING_AWAY, "server shutting down"),
        )
        .await;
        return;
    };
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(duplex_ws::Message::Text(t))) => hub.handle_text(id, t.as_str()),
                Some(Ok(duplex_ws::Message::Binary(_))) => {
                    let _ = tokio::time::timeout(
                        CLOSE_TIMEOUT,
                        ws.close_with(CloseCode::UNSUPPORTED_DATA, "JSON text only"),
                    )
                    .await;
                    break;
                }
                Some(Err(e)) => {
                    tracing::debug!("chat WebSocket failed: {e}");
                    break;
                }
                None => break,
            },
            out = outbox.recv() => {
                let mut next = out;
                loop {
                    match next {
                        Some(out) => {
                            STATS.sent(out.text.len());
                            if ws.feed(duplex_ws::Message::from(out.text.to_string())).await.is_err() {
                                hub.unregister(id);
                                return;
                            }
                        }
                        None => {
                            // Everything queued was fed above; the close
                            // goes out behind it.
                            let (code, reason) = farewell(&hub);
                            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close_with(code, reason)).await;
                            return;
                        }
                    }
                    match outbox.try_recv() {
                        Ok(out) => next = Some(out),
                        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => next = None,
                    }
                }
                if SinkExt::flush(&mut ws).await.is_err() {
                    break;
                }
            }
        }
    }
    hub.unregister(id);
}

/// `/poll`: the page's long-polling client, on the SockJS dialect's xhr
/// transport (`POST .../xhr` polls, `POST .../xhr_send` sends).
pub(super) async fn polling_member(hub: Arc<Hub>, mut socket: SockJsSocket) {
    let _open = STATS.open(Transport::Polling);
    let Some((id, mut outbox)) = hub.register(Transport::Polling) else {
        let _ = socket.close(3000, "Server shutting down").await;
        return;
    };
    loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(message) => {
                    if let Some(text) = message.as_text() {
                        hub.handle_text(id, text);
                    }
                }
                None => break,
            },
            out = outbox.recv() => match out {
                Some(out) => {
                    STATS.sent(out.text.len());
                    // Waits while the session's queue is full.
                    if socket.send_text(out.text.to_string()).await.is_err() {
                        break;
                    }
                }
                None => {
                    let (code, reason) = if hub.is_closing() {
                        (3000, "Server shutting down")
                    } else {
                        (3001, "Too slow")
                    };
                    let _ = socket.close(code, reason).await;
                    return;
                }
            },
        }
    }
    if socket.close_reason() == Some(CloseReason::Expired) {
        STATS.expired();
    }
    hub.unregister(id);
}

/// The SSE sessions' chat members, by session id, for `POST /sse/send`.
#[derive(Clone, Default)]
pub(super) struct SseMembers(Arc<Mutex<HashMap<String, MemberId>>>);

impl SseMembers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemberId>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `/sse/events`: the page's Server-Sent Events client. The first event,
/// `session`, gives the page the id its `POST /sse/send?session=` names.
pub(super) async fn sse_member(hub: Arc<Hub>, members: SseMembers, mut session: SseSession) {
    let _open = STATS.open(Transport::Sse);
    let sid = session.id().to_string();
    let Some((id, mut outbox)) = hub.register(Transport::Sse) else {
        let _ = session.close().await;
        return;
    };
    members.lock().insert(sid.clone(), id);
    let hello = json!({ "session": sid }).to_string();
    if session.send_event("session", hello).await.is_ok() {
        loop {
            tokio::select! {
                reason = session.closed() => {
                    if reason == Some(CloseReason::Expired) {
                        STATS.expired();
                    }
                    break;
                }
                out = outbox.recv() => match out {
                    Some(out) => {
                        STATS.sent(out.text.len());
                        if let Err(e) = session.send(out.text.to_string()).await {
                            // A full queue: the browser stopped reading.
                            tracing::debug!("chat SSE session dropped: {e}");
                            let _ = session.close().await;
                            break;
                        }
                    }
                    None => {
                        // What is queued is written, then the stream ends;
                        // the browser's reconnection gets 204.
                        let _ = session.close().await;
                        break;
                    }
                },
            }
        }
    }
    members.lock().remove(&sid);
    hub.unregister(id);
}

/// `POST /sse/send?session=<id>`: one chat message from an SSE client.
pub(super) async fn sse_send(
    hub: &Hub,
    members: &SseMembers,
    req: Request<Incoming>,
) -> Response<DemoBody> {
    if req.method() != http::Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
    }
    let session = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("session=")))
        .unwrap_or("")
        .to_owned();
    let Some(id) = members.lock().get(&session).copied() else {
        return text(StatusCode::NOT_FOUND, "no such session\n");
    };
    // Bounded in size and in time (a trickled body gets 408), as every
    // body the services read.
    let body = match duplex_tokio::HttpLimits::default()
        .read_body(req.into_body(), SEND_BODY_LIMIT)
        .await
    {
        Ok(body) => body,
        Err(duplex_tokio::Error::BodyTimeout(_)) => {
            let mut resp = text(StatusCode::REQUEST_TIMEOUT, "request body timed out\n");
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            return resp;
        }
        Err(duplex_tokio::Error::BodyTooLarge { .. }) => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        Err(_) => return text(StatusCode::BAD_REQUEST, "bad request body\n"),
    };
    let Ok(body) = std::str::from_utf8(&body) else {
        return text(StatusCode::BAD_REQUEST, "not UTF-8\n");
    };
    hub.handle_text(id, body);
    let mut resp = text(StatusCode::NO_CONTENT, "");
    resp.headers_mut().remove(http::header::CONTENT_TYPE);
    resp
}

/// The member id a Socket.IO socket got at its first `join`.
#[derive(Clone, Copy)]
struct SocketMember(MemberId);

/// The Socket.IO event for each kind of chat message.
fn socketio_event(kind: &str) -> &str {
    match kind {
        "message" => "chat",
        "error" => "chat-error",
        other => other,
    }
}

/// The chat on a Socket.IO namespace: `join({room, name}, ack)` acks with
/// the history and who is there, `say(text, ack)` posts, `latency(ack)`
/// acks at once (for round-trip times); the server emits `chat`,
/// `presence`, `joined`, `welcome` and `bye`.
pub(super) fn socketio_chat(ns: NamespaceHandlers, hub: Arc<Hub>) -> NamespaceHandlers {
    let join_hub = hub.clone();
    let say_hub = hub.clone();
    ns.on(
        "join",
        move |socket: Socket, Args(args): Args, ack: AckSender| {
            STATS.received(args_len(&args));
            let hub = &join_hub;
            let Some(id) = member_of(hub, &socket) else {
                reply(ack, Err(Refusal::ShuttingDown));
                return;
            };
            let doc = args.first().map(socketio::to_json).unwrap_or_default();
            let room = doc.get("room").and_then(|v| v.as_str()).unwrap_or("");
            let name = doc.get("name").and_then(|v| v.as_str()).unwrap_or("");
            reply(ack, hub.join(id, room, name));
        },
    )
    .on(
        "say",
        move |socket: Socket, Args(args): Args, ack: AckSender| {
            STATS.received(args_len(&args));
            let hub = &say_hub;
            let text = args.first().and_then(Value::as_str).unwrap_or("");
            let result = match socket.extensions().get::<SocketMember>() {
                Some(SocketMember(id)) => hub.say(id, text).map(|()| json!({ "ok": true })),
                None => Err(Refusal::NotJoined),
            };
            reply(ack, result);
        },
    )
    .on("latency", |Args(args): Args, ack: AckSender| {
        STATS.received(args_len(&args));
        let _ = ack.send_args(Vec::new());
    })
    .on_disconnect(move |socket: Socket| {
        if let Some(SocketMember(id)) = socket.extensions().get::<SocketMember>() {
            hub.unregister(id);
        }
    })
}

fn args_len(args: &[Value]) -> usize {
    args.iter()
        .map(|a| socketio::to_json(a).to_string().len())
        .sum()
}

fn reply(ack: AckSender, result: Result<serde_json::Value, Refusal>) {
    let doc = match result {
        Ok(doc) => doc,
        Err(refusal) => json!({ "error": refusal.to_string() }),
    };
    let _ = ack.send(&doc);
}

/// The socket's chat member, registering it (and starting the task that
/// emits its outbox) at the first call.
fn member_of(hub: &Arc<Hub>, socket: &Socket) -> Option<MemberId> {
    if let Some(SocketMember(id)) = socket.extensions().get::<SocketMember>() {
        return Some(id);
    }
    let (id, mut outbox) = hub.register(Transport::SocketIo)?;
    socket.extensions().insert(SocketMember(id));
    let socket = socket.clone();
    let hub = hub.clone();
    TASKS.spawn(async move {
        while let Some(out) = outbox.recv().await {
            emit(&socket, &out);
        }
        // At shutdown the server closes every connection itself; a member
        // dropped for being too slow is disconnected here.
        if !hub.is_closing() {
            socket.disconnect();
        }
    });
    Some(id)
}

fn emit(socket: &Socket, out: &Outgoing) {
    if out.kind == "pong" {
        return;
    }
    STATS.sent(out.text.len());
    let _ = socket.emit(socketio_event(out.kind), &*out.value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socketio_events_are_named_for_the_client() {
        assert_eq!(socketio_event("message"), "chat");
        assert_eq!(socketio_event("error"), "chat-error");
        assert_eq!(socketio_event("presence"), "presence");
    }
}
