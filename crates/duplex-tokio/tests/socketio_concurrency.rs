//! Socket.IO handlers run concurrently: a slow handler holds back only its
//! own socket (whether it awaits or blocks its thread in
//! `block_in_place`), and one socket's events still reach its handlers in
//! the order they came. (A handler that blocks a worker without telling
//! tokio can stall the runtime's IO whatever the library does: tokio's
//! rule, not ours.)
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

use std::time::{Duration, Instant};

use duplex_tokio::socketio::{Args, Data, Socket, SocketIo, SocketIoConfig};
use socketio_common::*;

fn server() -> SocketIo {
    SocketIo::builder(SocketIoConfig::default())
        .namespace("/", |ns| {
            ns.on("sleep", async |socket: Socket, Data(ms): Data<u64>| {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = socket.emit("slept", &ms);
            })
            // A sync handler that blocks its thread, the way tokio allows
            // it on a multi-thread runtime: another thread takes over the
            // worker's other tasks, and the other sockets go on.
            .on("block", |socket: Socket, Data(ms): Data<u64>| {
                tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(ms)));
                let _ = socket.emit("blocked", &ms);
            })
            .on("echo", |socket: Socket, Args(args): Args| {
                let _ = socket.emit_args("echo", args);
            })
        })
        .build()
}

/// The time `b` takes to get 20 echoes while `a` waits in `event`.
async fn echoes_while_the_other_socket_waits(event: &str) -> Duration {
    let io = server();
    let addr = serve(io.clone()).await;
    let (mut a, _) = sio_connect(addr).await;
    let (mut b, _) = sio_connect(addr).await;
    send(&mut a, &format!(r#"42["{event}",1000]"#)).await;
    // Let the slow handler start before measuring the other socket.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    for i in 0..20 {
        send(&mut b, &format!(r#"42["echo",{i}]"#)).await;
        assert_eq!(
            next(&mut b).await.unwrap(),
            format!(r#"42["echo",{i}]"#),
            "b's events keep their order"
        );
    }
    let took = started.elapsed();
    // And the slow handler did finish, once.
    let reply = next(&mut a).await.unwrap();
    assert!(reply.ends_with(",1000]"), "{reply}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_sleeps_a_second_does_not_delay_other_sockets() {
    let took = echoes_while_the_other_socket_waits("sleep").await;
    assert!(took < Duration::from_millis(700), "{took:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_awaiting_handler_does_not_delay_other_sockets_on_one_thread_either() {
    let took = echoes_while_the_other_socket_waits("sleep").await;
    assert!(took < Duration::from_millis(700), "{took:?}");
}

#[test]
fn a_handler_that_blocks_its_thread_a_second_leaves_the_other_worker_to_other_sockets() {
    // The server on a runtime of its own with two workers, the clients on
    // another, so that only the server's handlers are measured.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = server_rt.block_on(async { serve(server()).await });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let took = client_rt.block_on(async {
        let (mut a, _) = sio_connect(addr).await;
        let (mut b, _) = sio_connect(addr).await;
        send(&mut a, r#"42["block",1000]"#).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        for i in 0..20 {
            send(&mut b, &format!(r#"42["echo",{i}]"#)).await;
            assert_eq!(next(&mut b).await.unwrap(), format!(r#"42["echo",{i}]"#));
        }
        let took = started.elapsed();
        assert_eq!(next(&mut a).await.unwrap(), r#"42["blocked",1000]"#);
        took
    });
    assert!(took < Duration::from_millis(700), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sockets_events_reach_its_handlers_in_order_behind_a_slow_one() {
    let io = server();
    let addr = serve(io.clone()).await;
    let (mut a, _) = sio_connect(addr).await;
    // The first event waits 300 ms; the 50 after it must not overtake it.
    send(&mut a, r#"42["sleep",300]"#).await;
    for i in 0..50 {
        send(&mut a, &format!(r#"42["echo",{i}]"#)).await;
    }
    assert_eq!(next(&mut a).await.unwrap(), r#"42["slept",300]"#);
    for i in 0..50 {
        assert_eq!(next(&mut a).await.unwrap(), format!(r#"42["echo",{i}]"#));
    }
}

#[tokio::test]
async fn a_socket_that_floods_past_its_queue_is_disconnected() {
    let io = SocketIo::builder(SocketIoConfig {
        max_queued_events: 4,
        ..SocketIoConfig::default()
    })
    .namespace("/", |ns| {
        ns.on("sleep", async |Data(ms): Data<u64>| {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        })
    })
    .build();
    let addr = serve(io.clone()).await;
    let (mut a, _) = sio_connect(addr).await;
    // One running and four waiting fit; the sixth does not.
    for _ in 0..6 {
        send(&mut a, r#"42["sleep",2000]"#).await;
    }
    assert_eq!(next_skip_ping(&mut a).await.unwrap(), "41");
}
