//! The manager's task: it feeds the Engine.IO client session and the
//! Socket.IO client machine, carries out what they ask for, and moves
//! events and commands between them and the application's handles.

use std::collections::{HashMap, VecDeque};

use duplex_engineio::client::{
    ClientEvent as EioEvent, ClientSession, ClientTransmit as EioTransmit, CloseReason,
};
use duplex_engineio::client_url::{CLIENT_PROTOCOL, EngineIoUrl};
use duplex_engineio::{TransportKind, WsMessage};
use duplex_socketio::client::{
    Client as SioClient, ClientEvent as SioEvent, Transmit as SioTransmit, local_connect_error,
};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::sleep_until;

use super::handles::{AckReply, ClientAck, Command, Commands};
use super::io::{Conn, Http, IO_QUEUE, Io, http_client, http_get, http_post, now, websocket_task};
use super::{ClientConfig, ClientEvent, WS_WRITE_QUEUE};
use crate::socketio::AckError;

/// The manager's task: feeds the two machines and carries out what they
/// ask for.
struct Driver {
    config: ClientConfig,
    url: EngineIoUrl,
    http: Http,
    io: mpsc::Sender<Io>,
    commands: Commands,
    socketio: SioClient<AckReply>,
    sockets: HashMap<String, mpsc::Sender<ClientEvent>>,
    /// Events that found their socket's queue full, in order; while any
    /// wait, the manager reads nothing from the server (see
    /// [`EVENT_QUEUE`]).
    undelivered: VecDeque<(mpsc::Sender<ClientEvent>, ClientEvent)>,
    conn: Option<Conn>,
    next_conn: u64,
}

impl Driver {
    /// Starts a new Engine.IO connection.
    fn connect(&mut self) {
        self.next_conn += 1;
        self.conn = Some(Conn {
            id: self.next_conn,
            session: ClientSession::new(self.config.engineio(), now()),
            get: None,
            ws: None,
            ws_backlog: VecDeque::new(),
        });
    }

    /// Moves everything the machines have to say until they are quiet.
    fn pump(&mut self) {
        loop {
            let mut progress = false;
            let t = now();
            let mut closed = None;
            if let Some(conn) = &mut self.conn {
                while let Some(event) = conn.session.poll_event() {
                    progress = true;
                    let result = match event {
                        EioEvent::Opened(_) => {
                            self.socketio.handle_open(t);
                            Ok(())
                        }
                        EioEvent::Message(text) => self.socketio.handle_text(text.into_bytes(), t),
                        EioEvent::Binary(data) => self.socketio.handle_binary(data, t),
                        EioEvent::Upgraded | EioEvent::UpgradeFailed => {
                            tracing::debug!("Socket.IO client: {event:?}");
                            Ok(())
                        }
                        EioEvent::Closed(reason) => {
                            closed = Some(reason);
                            Ok(())
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!("Socket.IO client: {e}");
                        conn.session.close_with(CloseReason::ParseError);
                    }
                }
            }
            progress |= self.feed_session();
            if let Some(conn) = &mut self.conn {
                while let Some(transmit) = conn.session.poll_transmit() {
                    progress = true;
                    perform(
                        &self.config,
                        &self.url,
                        &self.http,
                        &self.io,
                        conn,
                        transmit,
                    );
                }
            }
            if let Some(reason) = closed {
                tracing::debug!("Socket.IO client: connection closed: {}", reason.as_str());
                self.conn = None;
                self.socketio.handle_close(reason.as_str(), t);
            }
            while let Some(event) = self.socketio.poll_event() {
                progress = true;
                self.dispatch(event);
            }
            if !progress {
                return;
            }
        }
    }

    /// Hands the Socket.IO machine's messages to the Engine.IO session.
    fn feed_session(&mut self) -> bool {
        let mut progress = false;
        while let Some(transmit) = self.socketio.poll_transmit() {
            progress = true;
            let Some(conn) = &mut self.conn else { continue };
            match transmit {
                SioTransmit::Text(text) => conn.session.send_message(text),
                SioTransmit::Binary(data) => conn.session.send_binary(data),
            }
        }
        progress
    }

    fn dispatch(&mut self, event: SioEvent<AckReply>) {
        let (namespace, event) = match event {
            SioEvent::Connect { namespace, sid } => {
                let recovered = self.socketio.recovered(&namespace);
                (namespace, ClientEvent::Connect { sid, recovered })
            }
            SioEvent::ConnectError { namespace, data } => {
                (namespace, ClientEvent::ConnectError { data })
            }
            SioEvent::Event {
                namespace,
                name,
                args,
                ack_id,
            } => {
                let ack = ack_id.map(|id| ClientAck {
                    commands: self.commands.clone(),
                    namespace: namespace.clone(),
                    id,
                });
                (namespace, ClientEvent::Event { name, args, ack })
            }
            SioEvent::Disconnect { namespace, reason } => {
                (namespace, ClientEvent::Disconnect { reason })
            }
            SioEvent::AckReceived { token, args, .. } => {
                let _ = token.send(Ok(args));
                return;
            }
            SioEvent::AckFailed { token, failure, .. } => {
                let _ = token.send(Err(AckError::from(failure)));
                return;
            }
            SioEvent::Removed { namespace } => {
                self.sockets.remove(&namespace);
                return;
            }
            SioEvent::Reconnect => {
                self.connect();
                return;
            }
            SioEvent::GaveUp => return,
        };
        if let Some(socket) = self.sockets.get(&namespace) {
            self.deliver(socket.clone(), event);
        }
    }

    /// Hands `event` to its socket, behind any undelivered ones.
    fn deliver(&mut self, socket: mpsc::Sender<ClientEvent>, event: ClientEvent) {
        if !self.undelivered.is_empty() {
            self.undelivered.push_back((socket, event));
            return;
        }
        // A socket dropped by the application takes nothing more.
        if let Err(TrySendError::Full(event)) = socket.try_send(event) {
            self.undelivered.push_back((socket, event));
        }
    }

    fn command(&mut self, command: Command) {
        let t = now();
        match command {
            Command::Join {
                namespace,
                auth,
                events,
            } => match self.socketio.join(&namespace, auth) {
                Ok(()) => {
                    self.sockets.insert(namespace, events);
                }
                Err(e) => {
                    let data = local_connect_error(&e.to_string());
                    self.deliver(events, ClientEvent::ConnectError { data });
                }
            },
            Command::Emit {
                namespace,
                event,
                args,
                ack,
            } => {
                let ack = ack.map(|(reply, timeout)| (reply, timeout.map(|d| t + d)));
                if let Err(e) = self.socketio.emit(&namespace, &event, &args, ack, t) {
                    tracing::debug!("Socket.IO client: emit {event:?}: {e}");
                }
            }
            Command::Ack {
                namespace,
                id,
                args,
            } => {
                if let Err(e) = self.socketio.ack(&namespace, id, &args) {
                    tracing::debug!("Socket.IO client: ack {id}: {e}");
                }
            }
            Command::Leave { namespace } => self.socketio.leave(&namespace),
            Command::Close => self.close(),
        }
    }

    /// Closes for good: DISCONNECTs and the Engine.IO close go out first.
    fn close(&mut self) {
        self.socketio.close();
        self.feed_session();
        if let Some(conn) = &mut self.conn {
            conn.session.close();
        }
        self.pump();
    }

    fn handle_timeout(&mut self) {
        let t = now();
        if let Some(conn) = &mut self.conn {
            conn.session.handle_timeout(t);
        }
        self.socketio.handle_timeout(t);
    }

    fn poll_timeout(&self) -> Option<std::time::Instant> {
        let session = self.conn.as_ref().and_then(|c| c.session.poll_timeout());
        match (session, self.socketio.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_io(&mut self, io: Io) {
        let Some(conn) = &mut self.conn else { return };
        let t = now();
        let session = &mut conn.session;
        match io {
            Io::Get(id, Ok(body)) if id == conn.id => session.handle_get_response(body, t),
            Io::Get(id, Err(e)) if id == conn.id => {
                tracing::debug!("Socket.IO client: poll: {e}");
                session.handle_get_error();
            }
            Io::Post(id, Ok(())) if id == conn.id => session.handle_post_done(),
            Io::Post(id, Err(e)) if id == conn.id => {
                tracing::debug!("Socket.IO client: post: {e}");
                session.handle_post_error();
            }
            Io::WsOpen(id) if id == conn.id => session.handle_ws_open(),
            Io::WsMessage(id, message) if id == conn.id => session.handle_ws_message(message, t),
            Io::WsClosed(id, error) if id == conn.id => {
                if let Some(e) = &error {
                    tracing::debug!("Socket.IO client: WebSocket: {e}");
                }
                session.handle_ws_closed(error.is_some());
            }
            // A report of a connection already dropped.
            _ => {}
        }
    }

    /// The WebSocket writer whose backlog waits for room, if any.
    fn blocked_ws(&self) -> Option<mpsc::Sender<WsMessage>> {
        let conn = self.conn.as_ref()?;
        if conn.ws_backlog.is_empty() {
            return None;
        }
        conn.ws.clone()
    }

    /// Moves the first backlogged WebSocket message into the room `permit`
    /// holds.
    fn write_backlog(&mut self, permit: Option<mpsc::OwnedPermit<WsMessage>>) {
        let Some(conn) = &mut self.conn else { return };
        let Some(message) = conn.ws_backlog.pop_front() else {
            return;
        };
        match permit {
            Some(permit) => {
                permit.send(message);
            }
            // The writer is gone: its session hears of it from the task.
            None => conn.ws_backlog.clear(),
        }
    }

    /// Moves the first undelivered event into the room `permit` holds (or
    /// drops it, its socket gone).
    fn deliver_first(&mut self, permit: Option<mpsc::OwnedPermit<ClientEvent>>) {
        if let (Some((_, event)), Some(permit)) = (self.undelivered.pop_front(), permit) {
            permit.send(event);
        }
    }
}

/// Carries out one thing the Engine.IO session asked for.
fn perform(
    config: &ClientConfig,
    url: &EngineIoUrl,
    http: &Http,
    io: &mpsc::Sender<Io>,
    conn: &mut Conn,
    transmit: EioTransmit,
) {
    let id = conn.id;
    let sid = conn.session.sid();
    match transmit {
        EioTransmit::Get => {
            let url = url.url(CLIENT_PROTOCOL, TransportKind::Polling, sid);
            let (http, io) = (http.clone(), io.clone());
            conn.get = Some(tokio::spawn(async move {
                let _ = io.send(Io::Get(id, http_get(&http, &url).await)).await;
            }));
        }
        EioTransmit::Post(body) => {
            let url = url.url(CLIENT_PROTOCOL, TransportKind::Polling, sid);
            let (http, io) = (http.clone(), io.clone());
            // Not aborted with the connection: the last one carries its close.
            tokio::spawn(async move {
                let _ = io
                    .send(Io::Post(id, http_post(&http, &url, body).await))
                    .await;
            });
        }
        EioTransmit::OpenWebSocket => {
            let url = url.url(CLIENT_PROTOCOL, TransportKind::WebSocket, sid);
            let (tx, rx) = mpsc::channel(WS_WRITE_QUEUE);
            conn.ws = Some(tx);
            conn.ws_backlog.clear();
            tokio::spawn(websocket_task(url, config.websocket(), id, rx, io.clone()));
        }
        EioTransmit::WebSocket(message) => conn.write_ws(message),
        EioTransmit::CloseWebSocket => conn.close_ws(),
    }
}

/// Room in `sender`'s queue, once there is (`None`: its receiver is gone).
async fn room<T>(sender: Option<mpsc::Sender<T>>) -> Option<mpsc::OwnedPermit<T>> {
    match sender {
        Some(sender) => sender.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

pub(super) async fn manager_task(
    config: ClientConfig,
    mut commands: mpsc::Receiver<Command>,
    commands_tx: Commands,
) {
    let (io_tx, mut io_rx) = mpsc::channel(IO_QUEUE);
    let mut driver = Driver {
        socketio: SioClient::new(config.socketio()),
        http: http_client(&config),
        url: config.engineio_url(),
        config,
        io: io_tx,
        commands: commands_tx,
        sockets: HashMap::new(),
        undelivered: VecDeque::new(),
        conn: None,
        next_conn: 0,
    };
    driver.connect();
    loop {
        driver.pump();
        if driver.socketio.is_done() {
            break;
        }
        let wake = driver.poll_timeout().map(tokio::time::Instant::from_std);
        let ws_blocked = driver.blocked_ws();
        let app_blocked = driver.undelivered.front().map(|(socket, _)| socket.clone());
        let (reading, taking_commands) = (app_blocked.is_none(), ws_blocked.is_none());
        tokio::select! {
            permit = room(ws_blocked), if !taking_commands => driver.write_backlog(permit),
            permit = room(app_blocked), if !reading => driver.deliver_first(permit),
            io = io_rx.recv(), if reading => {
                if let Some(io) = io {
                    driver.on_io(io);
                }
            }
            command = commands.recv(), if taking_commands => match command {
                Some(command) => driver.command(command),
                None => driver.close(),
            },
            () = async {
                match wake {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => driver.handle_timeout(),
        }
    }
    // The last events (the disconnects of the close) still reach the
    // sockets the application holds.
    for (socket, event) in driver.undelivered {
        let _ = socket.send(event).await;
    }
}
