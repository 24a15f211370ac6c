//! HTTP/1.1 and HTTP/2 on one listener through `serve_http`, over TLS and
//! in cleartext, and WebSockets over HTTP/2 streams (RFC 8441) with the
//! duplex client (`Http2Connection`): several at once on one connection,
//! a stream reset by the client, bad extended CONNECTs, 16 MiB messages
//! across the flow-control windows; the Socket.IO client over https
//! polling and wss against the duplex TLS server. Certificates are made
//! here with rcgen; everything runs on 127.0.0.1 with bounded waits.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::socketio::client::{ClientTransports, Manager};
use duplex_tokio::socketio::{AckSender, Args, NamespaceHandlers, SocketIo, SocketIoConfig, Value};
use duplex_tokio::{
    ClientConfig, Http2Connection, HttpProtocol, HttpServerConfig, Opening, TlsAcceptor,
    TlsServerConfig, rustls, serve_http,
};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod tls_common;

use tls_common::{make_cert, tls_connect, trusting, tungstenite_echo};

/// Every await in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

fn client_config(tls: Option<Arc<rustls::ClientConfig>>) -> ClientConfig {
    ClientConfig {
        tls,
        handshake_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

fn handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on("message-with-ack", |Args(args): Args, ack: AckSender| {
        let _ = ack.send_args(args);
    })
}

type Body = Full<Bytes>;

/// The test server's routes: `/echo` a WebSocket echo (either opening,
/// each opening reported on `openings`), `/socket.io/` Socket.IO, anything
/// else 404; a CONNECT without `:protocol` (no path) goes to the upgrade,
/// which refuses it.
async fn route(
    mut req: http::Request<hyper::body::Incoming>,
    io: SocketIo,
    openings: mpsc::UnboundedSender<Opening>,
) -> Result<http::Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path.starts_with("/socket.io") {
        return hyper::service::Service::call(&io, req).await;
    }
    let bare_connect = req.method() == http::Method::CONNECT
        && req.extensions().get::<hyper::ext::Protocol>().is_none();
    if path != "/echo" && !bare_connect {
        let mut not_found = http::Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *not_found.status_mut() = http::StatusCode::NOT_FOUND;
        return Ok(not_found);
    }
    Ok(
        match duplex_tokio::upgrade(&mut req, Default::default(), None) {
            Ok((response, upgrade)) => {
                let _ = openings.send(upgrade.opening());
                tokio::spawn(async move {
                    let Ok(mut ws) = upgrade.await else { return };
                    while let Some(Ok(msg)) = ws.next().await {
                        if ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                response.map(|()| Full::new(Bytes::new()))
            }
            Err(e) => e.http_response().map(|b| Full::new(Bytes::from(b))),
        },
    )
}

struct Server {
    addr: SocketAddr,
    openings: mpsc::UnboundedReceiver<Opening>,
}

/// Serves the routes on a fresh port: over TLS with `tls`, else cleartext
/// (HTTP/2 by prior knowledge, HTTP/1.1 otherwise).
async fn server(tls: Option<TlsAcceptor>) -> Server {
    let io = SocketIo::builder(SocketIoConfig::default())
        .namespace("/", handlers)
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, openings) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tls, io, tx) = (tls.clone(), io.clone(), tx.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| route(req, io.clone(), tx.clone()));
                let config = HttpServerConfig::default();
                let never = std::future::pending::<()>();
                let _ = match tls {
                    Some(tls) => match tls.accept(tcp).await {
                        Ok((stream, alpn)) => {
                            serve_http(stream, alpn.into(), service, &config, never).await
                        }
                        Err(e) => Err(e),
                    },
                    None => serve_http(tcp, HttpProtocol::Detect, service, &config, never).await,
                };
            });
        }
    });
    Server { addr, openings }
}

/// A TLS server with a fresh certificate and an HTTP/2 connection to it
/// from a client that trusts that certificate.
async fn tls_server_and_h2_client() -> (Server, Http2Connection) {
    let cert = make_cert();
    let server = server(Some(cert.acceptor(TlsServerConfig::default()))).await;
    let config = client_config(Some(trusting(&cert, &[b"h2"])));
    let h2 = Http2Connection::connect(&format!("wss://127.0.0.1:{}", server.addr.port()), &config)
        .await
        .unwrap();
    (server, h2)
}

async fn echo_round<S>(ws: &mut duplex_tokio::WebSocketStream<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(text.to_owned().into()).await.unwrap();
    let back = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert_eq!(
        back.unwrap().unwrap(),
        duplex_tokio::ws::Message::from(text.to_owned())
    );
}

#[tokio::test]
async fn duplex_client_over_wss_http11_and_http2_on_one_tls_listener() {
    let cert = make_cert();
    let mut server = server(Some(cert.acceptor(TlsServerConfig::default()))).await;
    let addr = server.addr;

    // HTTP/1.1: ALPN http/1.1, the upgrade.
    let config = client_config(Some(trusting(&cert, &[b"http/1.1"])));
    let (mut ws, _) = tokio::time::timeout(
        LIMIT,
        duplex_tokio::connect_with(&format!("wss://127.0.0.1:{}/echo", addr.port()), config),
    )
    .await
    .unwrap()
    .unwrap();
    echo_round(&mut ws, "over wss and HTTP/1.1").await;
    ws.close().await.unwrap();
    assert_eq!(server.openings.recv().await, Some(Opening::Http11Upgrade));

    // HTTP/2: ALPN h2 (the client's list is replaced by h2), extended CONNECT.
    let config = client_config(Some(trusting(&cert, &[])));
    let h2 = Http2Connection::connect(&format!("wss://127.0.0.1:{}", addr.port()), &config)
        .await
        .unwrap();
    let (mut ws, response) = h2.websocket("/echo", client_config(None)).await.unwrap();
    assert_eq!(response.protocol, None);
    echo_round(&mut ws, "over wss and HTTP/2").await;
    ws.send(duplex_tokio::ws::Message::Binary(Bytes::from_static(&[
        0, 1, 2,
    ])))
    .await
    .unwrap();
    let back = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert_eq!(
        back.unwrap().unwrap(),
        duplex_tokio::ws::Message::Binary(Bytes::from_static(&[0, 1, 2]))
    );
    ws.close().await.unwrap();
    assert_eq!(server.openings.recv().await, Some(Opening::Http2Connect));
}

#[tokio::test]
async fn http2_by_prior_knowledge_and_http11_on_one_cleartext_listener() {
    let mut server = server(None).await;
    let h2 = Http2Connection::connect(&format!("ws://{}", server.addr), &client_config(None))
        .await
        .unwrap();
    let (mut a, _) = h2.websocket("/echo", client_config(None)).await.unwrap();
    echo_round(&mut a, "h2c").await;
    assert_eq!(server.openings.recv().await, Some(Opening::Http2Connect));

    let (mut b, _) = duplex_tokio::connect(&format!("ws://{}/echo", server.addr))
        .await
        .unwrap();
    echo_round(&mut b, "http/1.1").await;
    assert_eq!(server.openings.recv().await, Some(Opening::Http11Upgrade));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn several_websockets_on_one_connection_each_close_on_their_own() {
    let (_server, h2) = tls_server_and_h2_client().await;
    let mut all = Vec::new();
    for _ in 0..10 {
        all.push(h2.websocket("/echo", client_config(None)).await.unwrap().0);
    }
    for (i, ws) in all.iter_mut().enumerate() {
        ws.send(format!("n{i}").into()).await.unwrap();
    }
    for (i, ws) in all.iter_mut().enumerate() {
        let back = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
        assert_eq!(
            back.unwrap().unwrap(),
            duplex_tokio::ws::Message::from(format!("n{i}"))
        );
    }
    // Closed one at a time: the others keep echoing after each close.
    while let Some(mut first) = (!all.is_empty()).then(|| all.remove(0)) {
        tokio::time::timeout(LIMIT, first.close())
            .await
            .unwrap()
            .unwrap();
        for (i, ws) in all.iter_mut().enumerate() {
            echo_round(ws, &format!("still {i}")).await;
        }
    }
    assert!(!h2.is_closed());
}

#[tokio::test]
async fn a_stream_reset_by_the_client_leaves_the_others_working() {
    let (_server, h2) = tls_server_and_h2_client().await;
    let (mut a, _) = h2.websocket("/echo", client_config(None)).await.unwrap();
    let (b, _) = h2.websocket("/echo", client_config(None)).await.unwrap();
    let (mut c, _) = h2.websocket("/echo", client_config(None)).await.unwrap();
    // Dropped without a close: hyper resets the stream (RST_STREAM CANCEL).
    drop(b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    echo_round(&mut a, "a after the reset").await;
    echo_round(&mut c, "c after the reset").await;
    let (mut d, _) = h2.websocket("/echo", client_config(None)).await.unwrap();
    echo_round(&mut d, "a new stream after the reset").await;
    assert!(!h2.is_closed());
}

/// An HTTP/2 cleartext connection driven by hyper directly, for requests
/// the duplex client would never send; returns once the server's SETTINGS
/// (extended CONNECT allowed) have arrived.
async fn raw_h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, mut conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !conn.is_extended_connect_protocol_enabled() {
        assert!(tokio::time::Instant::now() < deadline, "no SETTINGS");
        let _ = tokio::time::timeout(Duration::from_millis(2), &mut conn).await;
    }
    tokio::spawn(conn);
    send
}

fn connect_request(
    addr: SocketAddr,
    path: &str,
    protocol: Option<&'static str>,
    version: &str,
) -> http::Request<Empty<Bytes>> {
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri(format!("http://{addr}{path}"))
        .header("sec-websocket-version", version)
        .body(Empty::new())
        .unwrap();
    if let Some(p) = protocol {
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static(p));
    }
    req
}

#[tokio::test]
async fn bad_extended_connects_get_their_status_and_the_connection_stays_usable() {
    let server = server(None).await;
    let mut send = raw_h2(server.addr).await;
    let mut status = async |req| {
        send.ready().await.unwrap();
        let response = tokio::time::timeout(LIMIT, send.send_request(req))
            .await
            .unwrap()
            .unwrap();
        response.status().as_u16()
    };
    let addr = server.addr;
    // No :protocol: a tunnel request (authority only), which is not offered.
    let mut tunnel = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri(addr.to_string())
        .body(Empty::new())
        .unwrap();
    tunnel.headers_mut().insert(
        "sec-websocket-version",
        http::HeaderValue::from_static("13"),
    );
    assert_eq!(status(tunnel).await, 405);
    assert_eq!(
        status(connect_request(addr, "/echo", Some("chat"), "13")).await,
        400
    );
    assert_eq!(
        status(connect_request(addr, "/echo", Some("websocket"), "8")).await,
        426
    );
    assert_eq!(
        status(connect_request(addr, "/nowhere", Some("websocket"), "13")).await,
        404
    );
    // The same connection still opens a WebSocket.
    assert_eq!(
        status(connect_request(addr, "/echo", Some("websocket"), "13")).await,
        200
    );
}

#[tokio::test]
async fn sixteen_mib_messages_cross_the_flow_control_windows_both_ways() {
    let (_server, h2) = tls_server_and_h2_client().await;
    let (mut ws, _) = h2.websocket("/echo", client_config(None)).await.unwrap();
    // A second stream on the connection keeps working while the big one
    // fills the connection window.
    let (mut other, _) = h2.websocket("/echo", client_config(None)).await.unwrap();
    let big: Bytes = (0..16usize << 20).map(|i| (i % 251) as u8).collect();
    let send = ws.send(duplex_tokio::ws::Message::Binary(big.clone()));
    tokio::time::timeout(Duration::from_secs(60), send)
        .await
        .unwrap()
        .unwrap();
    let back = tokio::time::timeout(Duration::from_secs(60), ws.next())
        .await
        .unwrap();
    match back.unwrap().unwrap() {
        duplex_tokio::ws::Message::Binary(b) => {
            assert_eq!(b.len(), big.len());
            assert!(b == big, "16 MiB echo differs");
        }
        other => panic!("not binary: {other:?}"),
    }
    echo_round(&mut other, "beside 16 MiB").await;
    ws.close().await.unwrap();
}

#[tokio::test]
async fn socketio_client_over_https_polling_and_wss_against_the_tls_server() {
    let cert = make_cert();
    let server = server(Some(cert.acceptor(TlsServerConfig::default()))).await;
    let url = format!("https://localhost:{}", server.addr.port());
    for transports in [
        ClientTransports::Polling,
        ClientTransports::WebSocket,
        ClientTransports::PollingThenWebSocket,
    ] {
        let mut config = duplex_tokio::socketio::client::ClientConfig::new(&url);
        config.transports = transports;
        config.tls = Some(trusting(&cert, &[]));
        let manager = Manager::new(config);
        let socket = manager.socket("/", None);
        let reply = tokio::time::timeout(
            LIMIT,
            socket.emit_with_ack(
                "message-with-ack",
                vec![Value::from("over the duplex TLS server")],
                Some(Duration::from_secs(10)),
            ),
        )
        .await;
        assert!(
            matches!(&reply, Ok(Ok(args)) if args.len() == 1 && args[0] == Value::from("over the duplex TLS server")),
            "{transports:?}: {reply:?}"
        );
        manager.close();
    }
}

#[tokio::test]
async fn tungstenite_client_over_wss_against_the_http_server() {
    let cert = make_cert();
    let mut server = server(Some(cert.acceptor(TlsServerConfig::default()))).await;
    // No ALPN, as tungstenite users mostly connect: served HTTP/1.1.
    let stream = tls_connect(server.addr, trusting(&cert, &[]))
        .await
        .unwrap();
    tungstenite_echo(stream, server.addr.port()).await;
    assert_eq!(server.openings.recv().await, Some(Opening::Http11Upgrade));
}
