//! A chat in an axum 0.8 app: Socket.IO on `/` (rooms; a typed `say`, acked
//! with how many got it) and on `/admin` (a token checked by connect
//! middleware; admins announce into rooms), and a REST route that
//! announces into a room. `cargo run -p duplex-tokio --example socketio_axum_chat`,
//! then `curl -d hello http://127.0.0.1:3000/rooms/lobby/announce`.

use std::sync::Arc;

use axum::extract::{Path, State as AxumState};
use axum::{Router, routing::post};
use duplex_tokio::socketio::{
    AckSender, ConnectRefusal, Data, Extension, SendError, Socket, SocketExtensions, SocketIo,
    SocketIoConfig, State, TryData,
};
use serde::{Deserialize, Serialize};

/// The token of `/admin`: the handlers' shared state.
#[derive(Clone)]
pub(crate) struct AdminToken(pub(crate) Arc<str>);

#[derive(Deserialize)]
struct Auth {
    token: String,
    name: String,
}

/// Who a socket of `/admin` is, left by the middleware for the handlers.
#[derive(Clone)]
struct Admin(String);

/// The typed event, `say({room, text}, ack)`, and what the room gets.
#[derive(Deserialize, Serialize)]
struct Say {
    room: String,
    text: String,
}

fn join(socket: Socket, Data(room): Data<String>, ack: AckSender) -> Result<(), SendError> {
    socket.join(&room);
    ack.send(&socket.within(&room).sockets().len())
}

fn say(socket: Socket, say: TryData<Say>, ack: AckSender) -> Result<(), SendError> {
    match say.0 {
        Ok(say) => ack.send(&socket.within(&say.room).emit("said", &say)?),
        Err(e) => ack.send(&format!("bad message: {e}")),
    }
}

async fn admins_only(
    Data(auth): Data<Auth>,
    State(AdminToken(token)): State<AdminToken>,
    extensions: SocketExtensions,
) -> Result<(), ConnectRefusal> {
    if auth.token != *token {
        return Err(ConnectRefusal::new("invalid token"));
    }
    extensions.insert(Admin(auth.name));
    Ok(())
}

fn announce(socket: Socket, Data(say): Data<Say>, Extension(admin): Extension<Admin>) {
    let _ = socket
        .io()
        .to("/", &say.room)
        .emit("announcement", &format!("{}: {}", admin.0, say.text));
}

/// `POST /rooms/{room}/announce`: answers how many sockets got the body.
async fn rest_announce(
    AxumState(io): AxumState<SocketIo>,
    Path(room): Path<String>,
    text: String,
) -> String {
    let sent = io
        .to("/", &room)
        .emit("announcement", &format!("server: {text}"));
    sent.map_or_else(|e| e.to_string(), |n| n.to_string())
}

/// The app: the REST route, and Socket.IO at `/socket.io/`.
pub(crate) fn app(token: AdminToken) -> Router {
    let io = SocketIo::builder(SocketIoConfig::default())
        .with_state(token)
        .namespace("/", |ns| ns.on("join", join).on("say", say))
        .namespace("/admin", |ns| {
            ns.use_middleware(admins_only).on("announce", announce)
        })
        .build();
    Router::new()
        .route("/rooms/{room}/announce", post(rest_announce))
        .route_service("/socket.io/", io.clone())
        .with_state(io)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let token = std::env::var("ADMIN_TOKEN").unwrap_or_else(|_| "secret".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("chat on http://{}/", listener.local_addr()?);
    axum::serve(listener, app(AdminToken(token.into()))).await
}
