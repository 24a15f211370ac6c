//! The duplex Socket.IO client's bounded queues, against the duplex server
//! over loopback: events the application does not read yet are held back
//! (the client stops reading from the server) rather than lost, a burst of
//! emits beyond the command queue is refused with a typed error while every
//! queued one arrives in order, and a closed manager says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duplex_tokio::socketio::client::{
    COMMAND_QUEUE, ClientConfig, ClientError, ClientEvent, ClientSocket, ClientTransports,
    EVENT_QUEUE, Manager,
};
use duplex_tokio::socketio::{AckSender, Args, Data, Socket, SocketIo, SocketIoConfig, Value};

const WAIT: Duration = Duration::from_secs(10);

/// What the server saw of the `count` events.
#[derive(Default)]
struct Counted {
    received: u64,
    in_order: bool,
}

async fn server(counted: Arc<Mutex<Counted>>) -> String {
    counted.lock().unwrap().in_order = true;
    let io = SocketIo::builder(SocketIoConfig::default())
        .namespace("/", move |ns| {
            let counted = counted.clone();
            let total = counted.clone();
            ns.on("flood", |socket: Socket, Data(n): Data<u64>| {
                let sent = (0..n).filter(|i| socket.emit("n", i).is_ok()).count();
                let _ = socket.emit("done", &sent);
            })
            .on("count", move |Args(args): Args| {
                let mut c = counted.lock().unwrap();
                let expected = Value::from(c.received as i64);
                c.in_order &= args.first() == Some(&expected);
                c.received += 1;
            })
            .on("total", move |ack: AckSender| {
                let received = total.lock().unwrap().received;
                let _ = ack.send(&received);
            })
        })
        .build();
    format!("http://{}", socketio_common::serve(io).await)
}

async fn next(socket: &mut ClientSocket) -> ClientEvent {
    tokio::time::timeout(WAIT, socket.next_event())
        .await
        .expect("an event in time")
        .expect("the manager is running")
}

async fn connected(url: &str, transports: ClientTransports) -> (Manager, ClientSocket) {
    let mut config = ClientConfig::new(url);
    config.transports = transports;
    let manager = Manager::new(config);
    let mut socket = manager.socket("/", None);
    match next(&mut socket).await {
        ClientEvent::Connect { .. } => {}
        other => panic!("{other:?}"),
    }
    (manager, socket)
}

async fn unread_events_wait_for_the_application(transports: ClientTransports) {
    let url = server(Arc::default()).await;
    let (manager, mut socket) = connected(&url, transports).await;
    // More than the socket's queue holds, fewer than the server's session
    // queue (1024), so that nothing is refused on either side.
    let flood = 3 * EVENT_QUEUE as i64;
    socket.emit("flood", vec![Value::from(flood)]);
    // The application looks away while the server sends them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..flood {
        match next(&mut socket).await {
            ClientEvent::Event { name, args, .. } => {
                assert_eq!((name.as_str(), args), ("n", vec![Value::from(i)]), "{i}");
            }
            other => panic!("{i}: {other:?}"),
        }
    }
    match next(&mut socket).await {
        ClientEvent::Event { name, args, .. } => {
            assert_eq!((name.as_str(), args), ("done", vec![Value::from(flood)]));
        }
        other => panic!("{other:?}"),
    }
    manager.close();
}

#[tokio::test]
async fn unread_events_wait_for_the_application_over_websocket() {
    unread_events_wait_for_the_application(ClientTransports::WebSocket).await;
}

#[tokio::test]
async fn unread_events_wait_for_the_application_over_polling() {
    unread_events_wait_for_the_application(ClientTransports::Polling).await;
}

#[tokio::test]
async fn a_burst_beyond_the_command_queue_is_refused_and_the_rest_arrives_in_order() {
    let counted = Arc::new(Mutex::new(Counted::default()));
    let url = server(counted.clone()).await;
    let (manager, socket) = connected(&url, ClientTransports::WebSocket).await;
    // No await in the loop: on this one-thread runtime the manager's task
    // cannot take any command meanwhile, so exactly the queue's capacity
    // gets in.
    let mut queued = 0i64;
    let mut refused = 0usize;
    for _ in 0..COMMAND_QUEUE + 500 {
        match socket.try_emit("count", vec![Value::from(queued)]) {
            Ok(()) => queued += 1,
            Err(ClientError::QueueFull) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((queued as usize, refused), (COMMAND_QUEUE, 500));
    // Queued behind them all, so answered after the server counted them.
    let total = tokio::time::timeout(WAIT, socket.emit_with_ack("total", vec![], Some(WAIT)))
        .await
        .expect("the ack in time")
        .expect("an ack");
    assert_eq!(total, vec![Value::from(queued)]);
    assert!(counted.lock().unwrap().in_order);
    manager.close();
}

#[tokio::test]
async fn a_closed_manager_refuses_emits() {
    let url = server(Arc::default()).await;
    let (manager, mut socket) = connected(&url, ClientTransports::Polling).await;
    manager.close();
    assert!(matches!(
        next(&mut socket).await,
        ClientEvent::Disconnect {
            reason: "io client disconnect"
        }
    ));
    // The task ends, dropping its side of every queue.
    let end = tokio::time::timeout(WAIT, socket.next_event()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert!(matches!(
        socket.try_emit("late", vec![]),
        Err(ClientError::Closed)
    ));
    assert!(socket.emit_with_ack("late", vec![], None).await.is_err());
}
