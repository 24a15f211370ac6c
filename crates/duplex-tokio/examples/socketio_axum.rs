//! The Socket.IO server mounted in an axum router, as a `tower::Service`,
//! next to ordinary axum routes.
//!
//! ```text
//! cargo run -p duplex-tokio --example socketio_axum -- 127.0.0.1:3000
//! ```
//!
//! Then `curl 'http://127.0.0.1:3000/socket.io/?EIO=4&transport=polling'`
//! answers the Engine.IO handshake, and socket.io-client can connect to
//! `http://127.0.0.1:3000` and `emit("echo", ...)`.

use axum::Router;
use axum::routing::get;
use duplex_tokio::socketio::{AckSender, Args, Socket, SocketIo, SocketIoConfig};

mod support;

fn socket_io() -> SocketIo {
    SocketIo::builder(SocketIoConfig::default())
        .namespace("/", |ns| {
            ns.on(
                "echo",
                |socket: Socket, Args(args): Args, ack: Option<AckSender>| match ack {
                    Some(ack) => {
                        let _ = ack.send_args(args);
                    }
                    None => {
                        let _ = socket.emit_args("echo", args);
                    }
                },
            )
        })
        .build()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/",
            get(|| async { "an axum app with Socket.IO at /socket.io/\n" }),
        )
        // Engine.IO requests all go to /socket.io/ (the rest is the query).
        .route_service("/socket.io/", socket_io());
    let listener = support::listener().await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
