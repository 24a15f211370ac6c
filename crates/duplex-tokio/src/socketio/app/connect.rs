//! The application's part of a Socket.IO CONNECT in [`SocketIoApp`]: the
//! namespace's middleware runs as a task, and its answer grants the socket
//! (its mailbox, then its connect handler) or refuses it. The CONNECT's
//! protocol (answers, recovery) is the sans-IO [`Server`]'s.

#[allow(clippy::wildcard_imports)]
use super::*;

impl SocketIoApp {
    /// The application's part of a CONNECT: does the namespace exist, does
    /// its middleware let the socket in. Middleware runs as a task, which
    /// comes back with [`SocketIoApp::finish_connect`].
    pub(super) fn on_connect_request(
        &mut self,
        session: SessionId,
        namespace: String,
        auth: duplex_socketio::Value,
        implicit: bool,
    ) {
        let Some(handlers) = self.registry.find(&namespace) else {
            let _ = self.server.reject_unknown(&session, &namespace);
            return;
        };
        let Some(info) = self.infos.get_mut(&session) else {
            return;
        };
        // The opening request's headers move into the first socket's
        // handshake (nobody else holds that one); later sockets copy them.
        let (headers, query) = match Arc::get_mut(info) {
            Some(opened) if opened.namespace.is_empty() => (
                std::mem::take(&mut opened.headers),
                std::mem::take(&mut opened.query),
            ),
            _ => (info.headers.clone(), info.query.clone()),
        };
        let handshake = Arc::new(Handshake {
            namespace: namespace.clone(),
            auth,
            headers,
            query,
        });
        *info = handshake.clone();
        let extensions = Arc::new(Mutex::new(http::Extensions::new()));
        // v4's default namespace is granted at open, before any middleware;
        // a restored session may skip them (`skipMiddlewares`, as Node).
        if implicit
            || handlers.middlewares.is_empty()
            || self.server.skips_middlewares(&session, &namespace)
        {
            return self.finish_connect(&session, handshake, extensions, handlers, Ok(()));
        }
        let (Some(io), Some(runtime)) = (self.io(), self.runtime()) else {
            return;
        };
        let middlewares = handlers.middlewares.clone();
        runtime.spawn(async move {
            let mut verdict = Ok(());
            for middleware in middlewares {
                let parts = Parts {
                    io: io.clone(),
                    socket: None,
                    handshake: handshake.clone(),
                    extensions: SocketExtensions(extensions.clone()),
                    event: None,
                    args: vec![handshake.auth.clone()],
                    args_read_later: true,
                    ack: None,
                    reason: None,
                };
                verdict = match middleware(parts) {
                    Ok(future) => future.await,
                    // What the middleware needs is not there (a payload
                    // that does not fit its Data): the CONNECT is refused.
                    Err(e) => Err(ConnectRefusal::new(e.to_string())),
                };
                if verdict.is_err() {
                    break;
                }
            }
            io.service.with(|eio, app, now, deferred| {
                app.finish_connect(&session, handshake, extensions, handlers, verdict);
                app.run(eio, now, deferred);
            });
        });
    }

    /// Grants or refuses a CONNECT whose middleware ran; a granted socket
    /// gets its mailbox, and its connect handler is the first call in it.
    fn finish_connect(
        &mut self,
        session: &SessionId,
        handshake: Arc<Handshake>,
        extensions: Arc<Mutex<http::Extensions>>,
        handlers: Arc<NamespaceHandlers>,
        verdict: Result<(), ConnectRefusal>,
    ) {
        let namespace = handshake.namespace.clone();
        if let Err(refusal) = verdict {
            let _ =
                self.server
                    .reject(session, &namespace, &refusal.message, refusal.data.as_ref());
            return;
        }
        // The connection may have closed while the middleware ran.
        let Ok(id) = self.server.accept(session, &namespace) else {
            return;
        };
        self.handlers.entry(namespace.clone()).or_insert(handlers);
        // A restored socket's calls queue behind its old ones still running.
        let mailbox = self
            .departed
            .remove(&id)
            .filter(|_| self.server.recovered(&namespace, &id))
            .unwrap_or_else(|| Mailbox::new(self.max_queued_events));
        self.sockets.insert(
            id.clone(),
            SocketMeta {
                handshake,
                extensions,
                mailbox,
            },
        );
        let handler = self
            .handlers
            .get(&namespace)
            .and_then(|h| h.on_connect.clone());
        if let (Some(handler), Some(socket)) =
            (handler, self.socket_handle(session, &namespace, &id))
        {
            let mut parts = self.parts(&socket);
            parts.args = vec![socket.handshake.auth.clone()];
            self.dispatch(&id, handler, parts, true);
        }
    }
}
