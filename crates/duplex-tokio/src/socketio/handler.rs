//! Handlers as plain functions or closures, sync or async, whose arguments
//! are *extractors*: each argument's type says what it takes from the
//! event ([`Data`], [`TryData`], [`Args`], [`Event`]), from the socket
//! ([`Socket`], [`AckSender`], [`Extension`], [`SocketExtensions`],
//! [`Handshake`]) or from the server ([`SocketIo`], [`State`]).
//!
//! The same [`Handler`] trait serves event handlers, connect and
//! disconnect handlers and connect middleware; what differs is what each
//! can extract (a middleware runs before the socket exists, so it cannot
//! take a [`Socket`]; only a disconnect handler can take a
//! [`DisconnectReason`]). An argument that cannot be extracted skips the
//! handler with a log line, as a route whose extractor rejects the request
//! does in axum: take [`TryData`] instead of [`Data`] to answer a payload
//! that does not fit rather than drop it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;

use super::{AckSender, ConnectRefusal, DisconnectReason, Handshake, Socket, SocketIo, Value};
use crate::Error;

/// A boxed, sendable future: what the server runs for a handler.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Everything a handler's arguments are extracted from: one event (or a
/// connection, or a disconnection) and the handles around it.
///
/// Implement [`FromParts`] on a type of your own to extract it.
#[derive(Debug)]
pub struct Parts {
    pub(crate) io: SocketIo,
    pub(crate) socket: Option<Socket>,
    pub(crate) handshake: Arc<Handshake>,
    pub(crate) extensions: SocketExtensions,
    pub(crate) event: Option<String>,
    pub(crate) args: Vec<Value>,
    /// An extractor after the one being extracted reads `args` (see
    /// [`FromParts::READS_ARGS`]): [`Args`] copies them rather than
    /// taking them.
    pub(crate) args_read_later: bool,
    pub(crate) ack: Option<AckSender>,
    pub(crate) reason: Option<DisconnectReason>,
}

impl Parts {
    /// The server.
    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// The socket; `None` in connect middleware, which runs before the
    /// socket exists.
    pub fn socket(&self) -> Option<&Socket> {
        self.socket.as_ref()
    }

    /// What the socket connected with.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The event's name (`None` outside event handlers).
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The event's arguments; for connect handlers and middleware, the
    /// CONNECT packet's auth payload as the one argument.
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    /// The socket's extensions (already there in middleware, so that it can
    /// leave data for the handlers).
    pub fn extensions(&self) -> &SocketExtensions {
        &self.extensions
    }

    /// The application state of type `T` given to
    /// [`SocketIoBuilder::with_state`](super::SocketIoBuilder::with_state).
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.io.state::<T>()
    }
}

/// A type a handler can take as an argument.
pub trait FromParts: Sized {
    /// Takes `Self` from `parts`; an `Err` skips the handler (and refuses
    /// the connection, in middleware).
    fn from_parts(parts: &mut Parts) -> Result<Self, Error>;

    /// Whether extracting `Self` reads the event's arguments
    /// ([`Parts::args`]). An [`Args`] earlier in a handler's parameters
    /// takes the arguments (no copy) only when no later parameter reads
    /// them, so this stays true, the default, for any extractor that
    /// might; the extractors of the socket, the ack or the server say
    /// false.
    const READS_ARGS: bool = true;
}

impl FromParts for Socket {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts
            .socket
            .clone()
            .ok_or(Error::NotExtractable("Socket (in middleware)"))
    }
}

impl FromParts for SocketIo {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.io.clone())
    }
}

impl FromParts for Handshake {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(Handshake::clone(&parts.handshake))
    }
}

impl FromParts for Arc<Handshake> {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.handshake.clone())
    }
}

/// The ack of the event. When the client did not ask for one, sending on
/// it does nothing: take `Option<AckSender>` to tell.
impl FromParts for AckSender {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        match parts.ack.take() {
            Some(ack) => Ok(ack),
            None => Ok(AckSender { target: None }),
        }
    }
}

/// The ack of the event, `Some` only if the client asked for one.
impl FromParts for Option<AckSender> {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.ack.take())
    }
}

/// Why the socket left: disconnect handlers only.
impl FromParts for DisconnectReason {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts.reason.ok_or(Error::NotExtractable(
            "DisconnectReason (outside on_disconnect)",
        ))
    }
}

/// The event's arguments deserialized into `T`: the single argument as
/// `T`, or all of them as a sequence (a tuple or a `Vec`). For connect
/// handlers and middleware, the CONNECT's auth payload. Binary data reads
/// as arrays of byte numbers; take [`Args`] to keep it.
///
/// Arguments that do not fit skip the handler (logged at debug level):
/// take [`TryData`] to answer them.
#[derive(Debug, Clone, PartialEq)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromParts for Data<T> {
    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Value::from_args(&parts.args)
            .map(Data)
            .map_err(Error::InvalidPayload)
    }
}

/// [`Data`] that lets the handler see why arguments did not fit, to answer
/// the client (with the ack, say) instead of leaving it waiting.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, serde_json::Error>);

impl<T: DeserializeOwned> FromParts for TryData<T> {
    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(TryData(Value::from_args(&parts.args)))
    }
}

/// The event's arguments as they came, binary attachments in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Args(pub Vec<Value>);

impl FromParts for Args {
    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        // Taken when nothing after this reads them: an echo handler's
        // `Args` then costs no copy of the arguments (two allocations per
        // event for one string).
        if parts.args_read_later {
            Ok(Args(parts.args.clone()))
        } else {
            Ok(Args(std::mem::take(&mut parts.args)))
        }
    }
}

/// The event's name: for [`NamespaceHandlers::on_any`](super::NamespaceHandlers::on_any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event(pub String);

impl FromParts for Event {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts
            .event
            .clone()
            .map(Event)
            .ok_or(Error::NotExtractable("Event (outside event handlers)"))
    }
}

/// Application state of type `T`, given once to
/// [`SocketIoBuilder::with_state`](super::SocketIoBuilder::with_state)
/// and cloned for each handler (hold an `Arc` or a pool in it). A handler
/// that asks for state of a type never given is skipped, with an error in
/// the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromParts for State<T> {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts
            .io
            .state::<T>()
            .map(State)
            .ok_or(Error::MissingState(std::any::type_name::<T>()))
    }
}

/// A per-socket value of type `T`, cloned out of the socket's
/// [`SocketExtensions`] (put there by middleware, the connect handler or an
/// earlier event). Missing: the handler is skipped (logged); take
/// `Option<Extension<T>>` when it may be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromParts for Extension<T> {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts
            .extensions
            .get::<T>()
            .map(Extension)
            .ok_or(Error::MissingExtension(std::any::type_name::<T>()))
    }
}

impl<T: Clone + Send + Sync + 'static> FromParts for Option<Extension<T>> {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.extensions.get::<T>().map(Extension))
    }
}

impl FromParts for SocketExtensions {
    const READS_ARGS: bool = false;

    fn from_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.extensions.clone())
    }
}

/// Per-socket values of any type, one per type, kept as long as the
/// socket: a cheap, cloneable handle (every clone sees the same values).
/// Middleware gets it before the socket exists, so it can leave what it
/// learned (the user behind a token) for the handlers.
#[derive(Clone, Default)]
pub struct SocketExtensions(pub(crate) Arc<Mutex<http::Extensions>>);

impl std::fmt::Debug for SocketExtensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketExtensions").finish_non_exhaustive()
    }
}

impl SocketExtensions {
    /// Stores `value`, returning the one of the same type it replaces.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.lock().insert(value)
    }

    /// A clone of the value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().get::<T>().cloned()
    }

    /// Takes the value of type `T` out.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().remove::<T>()
    }

    /// The values, locked for in-place changes; do not hold the guard
    /// across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, http::Extensions> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a handler may return: nothing, or a `Result` whose error is logged
/// (so a handler can use `?` on its emits, or end with one).
pub trait HandlerOutput: Send + 'static {
    /// Logs a failure of the handler named `handler`.
    #[doc(hidden)]
    fn report(self, handler: &str);
}

impl HandlerOutput for () {
    fn report(self, _: &str) {}
}

impl<T: Send + 'static, E: std::fmt::Display + Send + 'static> HandlerOutput for Result<T, E> {
    fn report(self, handler: &str) {
        if let Err(e) = self {
            tracing::warn!(handler, "handler failed: {e}");
        }
    }
}

/// The marker of a handler that is a plain function or closure.
#[derive(Debug)]
pub enum SyncMarker {}

/// The marker of a handler that returns a future (an `async fn`, an async
/// closure, a closure returning an `async` block).
#[derive(Debug)]
pub enum AsyncMarker {}

/// A function whose arguments are all [`FromParts`]: sync (returning `()`
/// or a `Result`) or async. `M` is a marker that tells the two apart and
/// carries the argument types; it is inferred.
pub trait Handler<M>: Send + std::marker::Sync + 'static {
    /// What the handler returns (an async handler's future's output).
    type Output: Send + 'static;
    /// What running the handler gives: the output, or a future of it.
    type Future: Future<Output = Self::Output> + Send + 'static;

    /// Extracts the arguments from `parts` and calls the handler (a sync
    /// handler runs here).
    fn call(&self, parts: Parts) -> Result<Self::Future, Error>;
}

macro_rules! handler_impls {
    ($($arg:ident),*) => {
        #[allow(non_snake_case, unused_mut, unused_variables, unused_assignments)]
        impl<F, R, $($arg,)*> Handler<(SyncMarker, $($arg,)*)> for F
        where
            F: Fn($($arg),*) -> R + Send + std::marker::Sync + 'static,
            R: HandlerOutput,
            $($arg: FromParts,)*
        {
            type Output = R;
            type Future = std::future::Ready<R>;

            fn call(&self, mut parts: Parts) -> Result<Self::Future, Error> {
                let reads: &[bool] = &[$($arg::READS_ARGS),*];
                let mut next = 0;
                $(
                    next += 1;
                    parts.args_read_later = reads.get(next..).is_some_and(|r| r.contains(&true));
                    let $arg = $arg::from_parts(&mut parts)?;
                )*
                Ok(std::future::ready(self($($arg),*)))
            }
        }

        #[allow(non_snake_case, unused_mut, unused_variables, unused_assignments)]
        impl<F, Fut, $($arg,)*> Handler<(AsyncMarker, $($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Send + std::marker::Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: Send + 'static,
            $($arg: FromParts,)*
        {
            type Output = Fut::Output;
            type Future = Fut;

            fn call(&self, mut parts: Parts) -> Result<Self::Future, Error> {
                let reads: &[bool] = &[$($arg::READS_ARGS),*];
                let mut next = 0;
                $(
                    next += 1;
                    parts.args_read_later = reads.get(next..).is_some_and(|r| r.contains(&true));
                    let $arg = $arg::from_parts(&mut parts)?;
                )*
                Ok(self($($arg),*))
            }
        }
    };
}

handler_impls!();
handler_impls!(A1);
handler_impls!(A1, A2);
handler_impls!(A1, A2, A3);
handler_impls!(A1, A2, A3, A4);
handler_impls!(A1, A2, A3, A4, A5);
handler_impls!(A1, A2, A3, A4, A5, A6);
handler_impls!(A1, A2, A3, A4, A5, A6, A7);
handler_impls!(A1, A2, A3, A4, A5, A6, A7, A8);

/// An event, connect or disconnect handler with its types erased: the
/// call, extraction included, as one future (one allocation per call;
/// the extraction still runs in the socket's task, not under the lock).
pub(crate) type BoxedHandler = Arc<dyn Fn(Parts) -> BoxFuture<()> + Send + Sync>;

/// A connect middleware with its types erased.
pub(crate) type BoxedMiddleware =
    Arc<dyn Fn(Parts) -> Result<BoxFuture<Result<(), ConnectRefusal>>, Error> + Send + Sync>;

/// Erases `handler`; its failures are logged under `name`, and arguments
/// it cannot take skip it with a log line.
pub(crate) fn boxed<M, H>(name: String, handler: H) -> BoxedHandler
where
    H: Handler<M>,
    H::Output: HandlerOutput,
{
    // Shared by the calls rather than copied into each (an allocation
    // per event); the handler too, so that each call's future owns what
    // it runs without a second box around the handler's own future.
    let name: Arc<str> = Arc::from(name);
    let handler = Arc::new(handler);
    Arc::new(move |parts| {
        let handler = handler.clone();
        let name = name.clone();
        Box::pin(async move {
            match handler.call(parts) {
                Ok(future) => future.await.report(&name),
                Err(e) => log_rejection(&e),
            }
        })
    })
}

/// Logs why a handler was skipped: the client's fault at debug level, the
/// application's (state or an extension never given) as an error.
fn log_rejection(error: &Error) {
    match error {
        Error::InvalidPayload(e) => {
            tracing::debug!("event arguments do not fit the handler: {e}");
        }
        other => tracing::error!("handler not run: {other}"),
    }
}

/// Erases a middleware.
pub(crate) fn boxed_middleware<M, H>(handler: H) -> BoxedMiddleware
where
    H: Handler<M, Output = Result<(), ConnectRefusal>>,
{
    Arc::new(move |parts| Ok(Box::pin(handler.call(parts)?)))
}
