//! `duplex connect --socketio http://…[/namespace]`: events in and out
//! through duplex-tokio's Socket.IO client (its `Manager`).

use base64::Engine;
use duplex_tokio::socketio::Value;
use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};
use serde_json::json;

use super::input::{Input, UserEvent};
use super::{AckArg, Args, Failure, Out, Transport};

/// Runs the Socket.IO client until input ends (and acks are in), the
/// server disconnects the namespace, or reconnection gives up.
pub(super) async fn run(args: &Args, out: &Out) -> Result<(), Failure> {
    let (server, namespace) = split_url(&args.url)?;
    if !args.header.is_empty() {
        return Err(Failure::usage(
            "--header is not supported with --socketio (use --auth)",
        ));
    }
    if args.ack.is_some_and(|a| a != AckArg::Wait) {
        return Err(Failure::usage(
            "--ack takes no mode with --socketio (the modes are STOMP's)",
        ));
    }
    let auth = args
        .auth
        .as_deref()
        .map(|a| parse_json(a).map_err(|e| Failure::usage(format!("--auth: {e}"))))
        .transpose()?;
    let mut emits = Vec::new();
    for emit in &args.emits {
        let Some((event, rest)) = emit.split_first() else {
            continue;
        };
        let values = rest
            .iter()
            .map(|a| {
                parse_json(a).map_err(|e| Failure::usage(format!("--emit {event}: {a:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        emits.push((event.clone(), values));
    }
    let timeout = args.timeout()?;
    let wait = args.wait()?;
    let want_acks = args.ack == Some(AckArg::Wait);

    let mut config = ClientConfig::new(&server);
    // Polling and the WebSocket alike go over TLS with --ca/--insecure.
    config.tls = super::tls::config_for(&server, args, out)?;
    config.transports = match args.transport {
        Transport::Websocket => ClientTransports::WebSocket,
        Transport::Polling => ClientTransports::Polling,
        Transport::Upgrade => ClientTransports::PollingThenWebSocket,
        Transport::Streaming => {
            return Err(Failure::usage(
                "--transport streaming is SockJS's, not Socket.IO's",
            ));
        }
    };
    config.reconnection = !args.no_reconnect;
    // A query in the URL goes on every request, as the reference client
    // does with `query`.
    if let Ok(parsed) = url::Url::parse(&args.url) {
        config.query = parsed.query_pairs().into_owned().collect();
    }
    config.timeout = timeout;
    let manager = Manager::new(config);
    let mut socket = manager.socket(&namespace, auth);

    // The first CONNECT decides whether the server is there at all.
    let first = tokio::time::timeout(timeout, socket.next_event()).await;
    match first {
        Ok(Some(ClientEvent::Connect { sid, .. })) => out.news(
            "connect",
            json!({"sid": sid, "namespace": namespace}),
            &format!("connected to {namespace} on {server} (sid {sid})"),
        ),
        Ok(Some(ClientEvent::ConnectError { data })) => {
            manager.close();
            return Err(Failure::failed(format!(
                "{}: connect_error {}",
                args.url,
                to_json(&data)
            )));
        }
        Ok(_) | Err(_) => {
            manager.close();
            return Err(Failure::failed(format!(
                "{}: could not connect within {timeout:?}",
                args.url
            )));
        }
    }

    // Acks are awaited one at a time; events arriving meanwhile wait in
    // the socket's queue and are printed right after.
    for (event, values) in emits {
        emit(&socket, out, &event, values, want_acks, timeout).await?;
    }

    let mut input = Input::new(out).ending_after_eof(args.eof_closes().then_some(wait));
    let mut received = 0u64;
    let result = loop {
        tokio::select! {
            event = socket.next_event() => match event {
                Some(ClientEvent::Event { name, args: values, ack }) => {
                    print_event(out, "event", &name, &values);
                    // The tool has shown the event: that is all an ack
                    // can say for it.
                    if let Some(ack) = ack {
                        ack.send(Vec::new());
                    }
                    received += 1;
                    if args.count_reached(received) {
                        break Ok(());
                    }
                }
                Some(ClientEvent::Connect { sid, .. }) => out.news(
                    "connect",
                    json!({"sid": sid, "namespace": namespace}),
                    &format!("reconnected to {namespace} (sid {sid})"),
                ),
                Some(ClientEvent::ConnectError { data }) => {
                    break Err(Failure::failed(format!(
                        "the server refused namespace {namespace}: {}",
                        to_json(&data)
                    )));
                }
                Some(ClientEvent::Disconnect { reason }) => {
                    out.news("disconnect", json!({"reason": reason}), &format!("disconnected: {reason}"));
                    if reason == "io server disconnect" {
                        // The server ended the namespace: it is not retried.
                        break Ok(());
                    }
                    if args.no_reconnect {
                        break Err(Failure::failed(format!("disconnected: {reason}")));
                    }
                }
                Some(_) => {}
                None => break Err(Failure::failed("the connection is lost and reconnection gave up")),
            },
            event = input.next() => match event {
                UserEvent::Line(line) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match parse_line(&line) {
                        Ok((event, values)) => emit(&socket, out, &event, values, want_acks, timeout).await?,
                        Err(e) => out.warn(&format!("line not sent: {e}")),
                    }
                }
                UserEvent::Eof => {}
                UserEvent::Interrupt | UserEvent::Ended => break Ok(()),
            },
        }
    };
    socket.disconnect();
    manager.close();
    // Let the DISCONNECT and the Engine.IO close go out: the manager's
    // task ends (and the socket's queue with it) once they have.
    let _ = tokio::time::timeout(timeout, async {
        while socket.next_event().await.is_some() {}
    })
    .await;
    out.news("close", json!({}), "closed");
    result
}

/// Emits `event`; with `--ack`, waits for the ack and prints it.
async fn emit(
    socket: &ClientSocket,
    out: &Out,
    event: &str,
    values: Vec<Value>,
    want_ack: bool,
    timeout: std::time::Duration,
) -> Result<(), Failure> {
    if !want_ack {
        socket.emit(event, values);
        return Ok(());
    }
    let reply = socket
        .emit_with_ack(event, values, Some(timeout))
        .await
        .map_err(|e| Failure::failed(format!("ack of {event}: {e}")))?;
    print_event(out, "ack", event, &reply);
    Ok(())
}

/// Prints an event or an ack: `NAME ARG…` (each argument as JSON), or a
/// record with the arguments as an array.
fn print_event(out: &Out, kind: &str, name: &str, values: &[Value]) {
    let json_args: Vec<serde_json::Value> = values.iter().map(to_json).collect();
    let mut plain = if kind == "ack" {
        format!("ack {name}")
    } else {
        name.to_owned()
    };
    for a in &json_args {
        plain.push(' ');
        plain.push_str(&a.to_string());
    }
    out.data(kind, json!({"event": name, "args": json_args}), &plain);
}

/// A Socket.IO value as JSON, binary attachments as base64 strings.
fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => serde_json::Value::Number(n.clone()),
        Value::String(s) => s.as_str().into(),
        Value::Binary(bytes) => base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into(),
        Value::Array(items) => items.iter().map(to_json).collect(),
        Value::Object(pairs) => pairs
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// Why a JSON argument (from `--auth`, `--emit` or a stdin line) cannot be
/// sent; its text is what the user is told.
#[derive(Debug)]
enum ArgError {
    /// Not JSON.
    Json(serde_json::Error),
    /// A `{"$base64": …}` whose string is not base64.
    Base64(base64::DecodeError),
    /// A stdin line whose arguments after the event name are unusable.
    Arguments {
        /// The line's event name.
        event: String,
        /// What is wrong with them.
        cause: Box<ArgError>,
    },
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json(e) => write!(f, "{e}"),
            Self::Base64(e) => write!(f, "$base64: {e}"),
            Self::Arguments { event, cause } => write!(f, "arguments of {event}: {cause}"),
        }
    }
}

/// One JSON value.
fn parse_json(text: &str) -> Result<Value, ArgError> {
    let json = serde_json::from_str::<serde_json::Value>(text).map_err(ArgError::Json)?;
    from_json(json)
}

/// A JSON value as a Socket.IO value; `{"$base64": "…"}` stands for
/// binary data (sent as an attachment).
fn from_json(json: serde_json::Value) -> Result<Value, ArgError> {
    Ok(match json {
        serde_json::Value::Object(map) => {
            if let (1, Some(serde_json::Value::String(b64))) = (map.len(), map.get("$base64")) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(ArgError::Base64)?;
                return Ok(Value::Binary(bytes.into()));
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k, from_json(v)?)))
                    .collect::<Result<_, ArgError>>()?,
            )
        }
        serde_json::Value::Array(items) => {
            Value::Array(items.into_iter().map(from_json).collect::<Result<_, _>>()?)
        }
        other => Value::from(other),
    })
}

/// A stdin line `event [json args]`: the name, then JSON values separated
/// by whitespace.
fn parse_line(line: &str) -> Result<(String, Vec<Value>), ArgError> {
    let line = line.trim();
    let (event, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let values = serde_json::Deserializer::from_str(rest)
        .into_iter::<serde_json::Value>()
        .map(|v| v.map_err(ArgError::Json).and_then(from_json))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ArgError::Arguments {
            event: event.to_owned(),
            cause: Box::new(e),
        })?;
    Ok((event.to_owned(), values))
}

/// `http(s)://host:port/namespace` as the server (`http(s)://host:port`)
/// and the namespace (`/` when the path is empty).
fn split_url(url: &str) -> Result<(String, String), Failure> {
    let parsed = url::Url::parse(url).map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(Failure::usage(format!(
                "{url}: --socketio wants an http:// or https:// URL, not {other}://"
            )));
        }
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Failure::usage(format!("{url}: no host")))?;
    let server = match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    };
    let path = parsed.path().trim_end_matches('/');
    let namespace = if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    Ok((server, namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_server_and_namespace() {
        let (server, ns) = split_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (server.as_str(), ns.as_str()),
            ("http://127.0.0.1:8080", "/")
        );
        let (server, ns) = split_url("http://example.org/custom/").unwrap();
        assert_eq!(
            (server.as_str(), ns.as_str()),
            ("http://example.org", "/custom")
        );
        let (server, ns) = split_url("https://example.org:8443/admin").unwrap();
        assert_eq!(
            (server.as_str(), ns.as_str()),
            ("https://example.org:8443", "/admin")
        );
        assert!(split_url("ws://example.org/").is_err());
        assert!(split_url("not a url").is_err());
    }

    #[test]
    fn lines_are_an_event_and_json_values() {
        let (event, values) = parse_line(r#"chat "hi" {"to":1} [2]"#).unwrap();
        assert_eq!(event, "chat");
        assert_eq!(values.len(), 3);
        assert_eq!(values[0], Value::from("hi"));
        let (event, values) = parse_line("ping").unwrap();
        assert_eq!((event.as_str(), values.len()), ("ping", 0));
        assert!(parse_line("chat {oops").is_err());
    }

    #[test]
    fn base64_objects_are_binary() {
        let value = parse_json(r#"[{"$base64":"aGk="},{"$base64":"aGk=","x":1}]"#).unwrap();
        let Value::Array(items) = value else {
            panic!("{value:?}")
        };
        assert_eq!(items[0], Value::Binary(bytes::Bytes::from_static(b"hi")));
        assert!(matches!(items[1], Value::Object(_)));
        assert!(parse_json(r#"{"$base64":"***"}"#).is_err());
    }

    #[test]
    fn binary_is_shown_as_base64() {
        let value = Value::Array(vec![
            Value::Binary(bytes::Bytes::from_static(b"hi")),
            1i64.into(),
        ]);
        assert_eq!(to_json(&value), json!(["aGk=", 1]));
    }
}
