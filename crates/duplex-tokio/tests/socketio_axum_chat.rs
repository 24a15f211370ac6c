//! The axum chat example (examples/socketio_axum_chat.rs), served on
//! loopback and driven by the duplex Socket.IO client over WebSocket,
//! polling and polling upgraded to WebSocket: rooms, the typed `say` and
//! its ack (a bad payload answered, not dropped), the token check of
//! `/admin`'s middleware, an admin's announcement and the REST route's.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

#[allow(dead_code)]
#[path = "../examples/socketio_axum_chat.rs"]
mod chat;

use std::time::Duration;

use duplex_tokio::socketio::Value;
use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};

const WAIT: Duration = Duration::from_secs(5);

async fn serve() -> String {
    let app = chat::app(chat::AdminToken("s3cret".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A socket of `namespace`, with the `Connect` or `ConnectError` event
/// that came first.
async fn socket(
    manager: &Manager,
    namespace: &str,
    auth: Option<serde_json::Value>,
) -> (ClientSocket, ClientEvent) {
    let mut socket = manager.socket(namespace, auth.map(Value::from));
    let first = next(&mut socket).await;
    (socket, first)
}

async fn next(socket: &mut ClientSocket) -> ClientEvent {
    tokio::time::timeout(WAIT, socket.next_event())
        .await
        .expect("an event in time")
        .expect("the socket is open")
}

/// The next event named `name`, with its arguments.
async fn event(socket: &mut ClientSocket, name: &str) -> Vec<Value> {
    loop {
        if let ClientEvent::Event { name: n, args, .. } = next(socket).await {
            if n == name {
                return args;
            }
        }
    }
}

async fn ack(socket: &ClientSocket, event: &str, args: Vec<Value>) -> Vec<Value> {
    tokio::time::timeout(WAIT, socket.emit_with_ack(event, args, Some(WAIT)))
        .await
        .expect("the ack in time")
        .expect("an ack")
}

async fn chat_works_over(transports: ClientTransports) {
    let url = serve().await;
    let manager = |url: &str| {
        let mut config = ClientConfig::new(url);
        config.transports = transports;
        Manager::new(config)
    };
    let (alice_io, bob_io, admin_io) = (manager(&url), manager(&url), manager(&url));
    let (alice, first) = socket(&alice_io, "/", None).await;
    assert!(matches!(first, ClientEvent::Connect { .. }), "{first:?}");
    let (mut bob, _) = socket(&bob_io, "/", None).await;

    // Rooms: the join is acked with the room's size.
    assert_eq!(
        ack(&alice, "join", vec!["lobby".into()]).await,
        [Value::from(1)]
    );
    assert_eq!(
        ack(&bob, "join", vec!["lobby".into()]).await,
        [Value::from(2)]
    );

    // The typed event reaches the room; its ack is how many got it.
    let say = serde_json::json!({"room": "lobby", "text": "hi"});
    assert_eq!(ack(&alice, "say", vec![say.into()]).await, [Value::from(2)]);
    let said = event(&mut bob, "said").await;
    assert_eq!(said[0].get("room"), Some(&Value::from("lobby")));
    assert_eq!(said[0].get("text"), Some(&Value::from("hi")));
    // A payload that does not fit is answered, not dropped.
    let bad = ack(&alice, "say", vec!["not a message".into()]).await;
    assert!(
        bad[0].as_str().unwrap().starts_with("bad message"),
        "{bad:?}"
    );

    // /admin: a wrong token is refused by the middleware...
    let wrong = serde_json::json!({"token": "nope", "name": "mallory"});
    let (_, refused) = socket(&admin_io, "/admin", Some(wrong)).await;
    let ClientEvent::ConnectError { data } = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(data.get("message"), Some(&Value::from("invalid token")));
    // ...the right one gets in, and its name reaches the handlers.
    let right = serde_json::json!({"token": "s3cret", "name": "root"});
    let (admin, first) = socket(&admin_io, "/admin", Some(right)).await;
    assert!(matches!(first, ClientEvent::Connect { .. }), "{first:?}");
    let note = serde_json::json!({"room": "lobby", "text": "maintenance"});
    admin.emit("announce", vec![note.into()]);
    assert_eq!(
        event(&mut bob, "announcement").await,
        [Value::from("root: maintenance")]
    );

    // The REST route emits into the room.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("{url}/rooms/lobby/announce"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"hello",
        )))
        .unwrap();
    let resp = tokio::time::timeout(WAIT, client.request(req))
        .await
        .unwrap()
        .unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"2");
    assert_eq!(
        event(&mut bob, "announcement").await,
        [Value::from("server: hello")]
    );
    for m in [alice_io, bob_io, admin_io] {
        m.close();
    }
}

#[tokio::test]
async fn over_websocket() {
    chat_works_over(ClientTransports::WebSocket).await;
}

#[tokio::test]
async fn over_polling() {
    chat_works_over(ClientTransports::Polling).await;
}

#[tokio::test]
async fn over_polling_upgraded_to_websocket() {
    chat_works_over(ClientTransports::PollingThenWebSocket).await;
}
