//! Publishes one operation into a Socket.IO cluster with the [`Emitter`],
//! then exits; the mixed-cluster conformance suite runs it against duplex
//! and Node servers alike.
//!
//! ```text
//! emit REDIS_URL classic|sharded NSP to ROOM|- EXCEPT|- EVENT ARG...
//! emit REDIS_URL classic|sharded NSP join ROOM|- EXCEPT|- NEW_ROOM
//! emit REDIS_URL classic|sharded NSP leave ROOM|- EXCEPT|- OLD_ROOM
//! emit REDIS_URL classic|sharded NSP disconnect ROOM|- EXCEPT|- true|false
//! emit REDIS_URL classic|sharded NSP server-side EVENT ARG...
//! ```
//!
//! `-` means no room (the whole namespace) or no exception. Every ARG is
//! sent as a string.

use duplex_redis::{Emitter, EmitterOperator, RedisMode, SubscriptionMode};
use duplex_tokio::socketio::Value;

fn select(emitter: &Emitter, room: &str, except: &str) -> EmitterOperator {
    let op = match room {
        "-" => emitter.all(),
        room => emitter.to(room),
    };
    match except {
        "-" => op,
        except => op.except(except),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, mode, nsp, op, rest @ ..] = args.as_slice() else {
        return Err("usage: emit REDIS_URL classic|sharded NSP OP ...".into());
    };
    let mode = match mode.as_str() {
        "sharded" => RedisMode::Sharded(SubscriptionMode::Dynamic),
        _ => RedisMode::Classic,
    };
    let emitter = Emitter::connect(url, mode, "socket.io").await?.of(nsp);
    let strings = |a: &[String]| a.iter().map(|s| Value::from(s.as_str())).collect();
    match (op.as_str(), rest) {
        ("to", [room, except, event, args @ ..]) => {
            select(&emitter, room, except)
                .emit(event, strings(args))
                .await?
        }
        ("join", [room, except, new]) => {
            select(&emitter, room, except).sockets_join(&[new]).await?
        }
        ("leave", [room, except, old]) => {
            select(&emitter, room, except).sockets_leave(&[old]).await?
        }
        ("disconnect", [room, except, close]) => {
            select(&emitter, room, except)
                .disconnect_sockets(close == "true")
                .await?
        }
        ("server-side", [event, args @ ..]) => {
            emitter.server_side_emit(event, strings(args)).await?
        }
        _ => return Err(format!("unknown operation {op} {rest:?}").into()),
    }
    Ok(())
}
