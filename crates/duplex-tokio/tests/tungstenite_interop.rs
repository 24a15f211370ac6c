//! Interop over loopback with an independent implementation: the duplex
//! server against a tokio-tungstenite client, and the duplex client against
//! a tokio-tungstenite server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::ws::{CloseCode, Config, Message};
use duplex_tokio::{ClientConfig, ServerConfig, StreamConfig};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{
    self, Message as TMessage,
    protocol::{
        CloseFrame as TCloseFrame, WebSocketConfig, frame::Frame, frame::coding::CloseCode as TCode,
    },
};

const SIXTEEN_MIB: usize = 16 << 20;

/// Every test is bounded: a hang is a failure, not a stuck CI job.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

fn big_payload() -> Vec<u8> {
    (0..SIXTEEN_MIB).map(|i| (i % 251) as u8).collect()
}

fn tungstenite_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
}

/// A duplex echo server that records how each connection closed.
async fn duplex_echo_server() -> (String, tokio::task::JoinHandle<Option<u16>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = duplex_tokio::accept(tcp).await.unwrap();
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(msg) => ws.send(msg).await.unwrap(),
                Err(_) => break,
            }
        }
        ws.peer_close().and_then(|f| f.as_ref().map(|f| f.code.0))
    });
    (url, handle)
}

#[tokio::test]
async fn tungstenite_client_against_duplex_server() {
    bounded(async {
        let (url, server) = duplex_echo_server().await;
        let (mut client, _) =
            tokio_tungstenite::connect_async_with_config(&url, Some(tungstenite_config()), false)
                .await
                .unwrap();
        let cases = vec![
            TMessage::text("hello"),
            TMessage::text("κόσμε 𝄞"),
            TMessage::text(""),
            TMessage::binary(vec![0u8, 1, 2, 255]),
            TMessage::binary(Vec::new()),
            TMessage::binary(big_payload()),
        ];
        for msg in cases {
            client.send(msg.clone()).await.unwrap();
            assert_eq!(client.next().await.unwrap().unwrap(), msg);
        }
        // A fragmented text message, with a ping between the fragments.
        client
            .send(TMessage::Frame(Frame::message(
                Bytes::from_static(b"frag"),
                tungstenite::protocol::frame::coding::OpCode::Data(
                    tungstenite::protocol::frame::coding::Data::Text,
                ),
                false,
            )))
            .await
            .unwrap();
        client
            .send(TMessage::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        client
            .send(TMessage::Frame(Frame::message(
                Bytes::from_static(b"mented"),
                tungstenite::protocol::frame::coding::OpCode::Data(
                    tungstenite::protocol::frame::coding::Data::Continue,
                ),
                true,
            )))
            .await
            .unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            TMessage::Pong(Bytes::from_static(b"p"))
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            TMessage::text("fragmented")
        );
        // Close with an application code: the server echoes it and closes TCP.
        client
            .close(Some(TCloseFrame {
                code: TCode::from(4000),
                reason: "bye".into(),
            }))
            .await
            .unwrap();
        let reply = client.next().await.unwrap().unwrap();
        assert!(
            matches!(reply, TMessage::Close(Some(ref f)) if u16::from(f.code) == 4000),
            "{reply:?}"
        );
        assert!(client.next().await.is_none());
        assert_eq!(server.await.unwrap(), Some(4000));
    })
    .await;
}

#[tokio::test]
async fn duplex_server_closes_with_1002_on_a_protocol_error() {
    bounded(async {
        let (url, server) = duplex_echo_server().await;
        let (mut client, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        // RSV2 set: no extension defines it.
        let mut frame = Frame::message(
            Bytes::from_static(b"x"),
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        );
        frame.header_mut().rsv2 = true;
        client.send(TMessage::Frame(frame)).await.unwrap();
        let reply = client.next().await.unwrap();
        match reply {
            Ok(TMessage::Close(Some(f))) => assert_eq!(u16::from(f.code), 1002),
            other => panic!("expected a 1002 close, got {other:?}"),
        }
        assert_eq!(server.await.unwrap(), None);
    })
    .await;
}

/// A tokio-tungstenite echo server; returns the close code it saw.
async fn tungstenite_echo_server() -> (String, tokio::task::JoinHandle<Option<u16>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async_with_config(tcp, Some(tungstenite_config()))
            .await
            .unwrap();
        let mut code = None;
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                TMessage::Text(_) | TMessage::Binary(_) => ws.send(msg).await.unwrap(),
                TMessage::Close(frame) => code = frame.map(|f| u16::from(f.code)),
                _ => {}
            }
        }
        code
    });
    (url, handle)
}

#[tokio::test]
async fn duplex_client_against_tungstenite_server() {
    bounded(async {
        let (url, server) = tungstenite_echo_server().await;
        let (mut ws, _) = duplex_tokio::connect(&url).await.unwrap();
        let cases = vec![
            Message::from("hello"),
            Message::from("κόσμε 𝄞".to_owned()),
            Message::from(""),
            Message::Binary(Bytes::from_static(&[0, 1, 2, 255])),
            Message::Binary(Bytes::new()),
            Message::Binary(big_payload().into()),
        ];
        for msg in cases {
            ws.send(msg.clone()).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), msg);
        }
        ws.ping(b"are you there").await.unwrap();
        ws.send("after ping".into()).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::from("after ping")
        );
        ws.close_with(CloseCode::GOING_AWAY, "leaving")
            .await
            .unwrap();
        assert_eq!(server.await.unwrap(), Some(1001));
    })
    .await;
}

#[tokio::test]
async fn duplex_client_fragments_and_the_server_closes_first() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let first = ws.next().await.unwrap().unwrap();
            ws.close(Some(TCloseFrame {
                code: TCode::Normal,
                reason: "done".into(),
            }))
            .await
            .unwrap();
            while ws.next().await.is_some() {}
            first
        });
        let config = ClientConfig {
            connection: Config {
                max_outgoing_frame_size: Some(3),
                ..Config::default()
            },
            ..ClientConfig::default()
        };
        let (mut ws, _) = duplex_tokio::connect_with(&url, config).await.unwrap();
        ws.send("fragmented into threes".into()).await.unwrap();
        // The server's close ends the stream; the close frame is kept.
        assert!(ws.next().await.is_none());
        let close = ws.peer_close().cloned().flatten().unwrap();
        assert_eq!(close.code, CloseCode::NORMAL);
        assert_eq!(close.reason, "done");
        assert_eq!(
            server.await.unwrap(),
            TMessage::text("fragmented into threes")
        );
    })
    .await;
}

#[tokio::test]
async fn oversized_messages_are_refused_with_1009() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let config = ServerConfig {
                connection: Config {
                    max_message_size: 1024,
                    ..Config::default()
                },
                stream: StreamConfig::default(),
                ..ServerConfig::default()
            };
            let (mut ws, _) = duplex_tokio::accept_with(tcp, config, |_| Ok(Default::default()))
                .await
                .unwrap();
            ws.next().await.map(|r| r.map_err(|e| e.to_string()))
        });
        let (mut client, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        client
            .send(TMessage::binary(vec![0u8; 2048]))
            .await
            .unwrap();
        match client.next().await.unwrap() {
            Ok(TMessage::Close(Some(f))) => assert_eq!(u16::from(f.code), 1009),
            other => panic!("expected a 1009 close, got {other:?}"),
        }
        let server_saw = server.await.unwrap();
        assert!(
            matches!(server_saw, Some(Err(ref e)) if e.contains("over the limit")),
            "{server_saw:?}"
        );
    })
    .await;
}
