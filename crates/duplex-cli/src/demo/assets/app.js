// duplex chat: the page served by `duplex serve`. No libraries: three small
// transports of our own carry the same JSON chat messages.
//
//   websocket  one JSON text message per WebSocket message, at /ws
//   polling    long-polling on the SockJS dialect's xhr transport, at /poll:
//              POST .../xhr waits for frames (o, h, a[...], c[code,"reason"]),
//              POST .../xhr_send carries a JSON array of messages
//   sse        Server-Sent Events down (/sse/events), POST up (/sse/send)
//
// Query parameters (used by the browser tests): name, room, transport,
// autoconnect=1.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  // ---- transports ----------------------------------------------------------

  // POSTs `body` to `url`; anything but 204 is a failed send.
  async function post(url, body, type) {
    const r = await fetch(url, { method: 'POST', body, headers: { 'Content-Type': type } });
    if (r.status !== 204) throw new Error('HTTP ' + r.status);
  }

  // The messages an HTTP transport has yet to send: once started (the
  // session is open), `send(batch)` takes everything queued, one call at a
  // time so that messages arrive in order; a failed send ends the
  // transport through `failed(why)`.
  class Outbox {
    constructor(send, failed) {
      this.sendBatch = send;
      this.failed = failed;
      this.queue = [];
      this.started = false;
      this.sending = false;
    }
    push(text) { this.queue.push(text); this.flush(); }
    start() { this.started = true; this.flush(); }
    async flush() {
      if (this.sending || !this.started || this.queue.length === 0) return;
      this.sending = true;
      const batch = this.queue.splice(0);
      try {
        await this.sendBatch(batch);
      } catch (e) {
        this.failed('send failed: ' + e.message);
      }
      this.sending = false;
      this.flush();
    }
  }

  class WebSocketTransport {
    constructor(handlers) {
      this.h = handlers;
      this.name = 'websocket';
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      this.ws = new WebSocket(scheme + '//' + location.host + '/ws');
      this.ws.onopen = () => this.h.open(this.ws.extensions
        ? 'WebSocket at /ws, extensions: ' + this.ws.extensions
        : 'WebSocket at /ws, no extension');
      this.ws.onmessage = (e) => this.h.message(e.data);
      this.ws.onclose = (e) => this.h.closed(e.code + (e.reason ? ' ' + e.reason : ''));
      this.ws.onerror = () => {};
    }
    send(text) { this.ws.send(text); }
    close() { this.ws.close(1000, 'bye'); }
  }

  class PollingTransport {
    constructor(handlers) {
      this.h = handlers;
      this.name = 'polling';
      const session = Math.random().toString(36).slice(2, 10);
      this.base = '/poll/000/' + session;
      this.done = false;
      // The xhr_send transport carries a JSON array of messages.
      this.outbox = new Outbox(
        (batch) => post(this.base + '/xhr_send', JSON.stringify(batch), 'text/plain'),
        (why) => this.finish(why));
      this.abort = new AbortController();
      this.poll();
    }
    async poll() {
      while (!this.done) {
        let body;
        try {
          const r = await fetch(this.base + '/xhr', { method: 'POST', signal: this.abort.signal });
          if (!r.ok) throw new Error('HTTP ' + r.status);
          body = await r.text();
        } catch (e) {
          if (!this.done) this.finish('poll failed: ' + e.message);
          return;
        }
        this.frame(body.trim());
      }
    }
    frame(frame) {
      const kind = frame.charAt(0);
      if (kind === 'o') {
        this.h.open('long-polling at /poll (SockJS xhr frames, one POST per poll)');
        this.outbox.start();
      } else if (kind === 'a') {
        for (const m of JSON.parse(frame.slice(1))) this.h.message(m);
      } else if (kind === 'c') {
        const [code, reason] = JSON.parse(frame.slice(1));
        this.finish(code + ' ' + reason);
      }
      // 'h' is a heartbeat: poll again.
    }
    send(text) { this.outbox.push(text); }
    finish(why) {
      if (this.done) return;
      this.done = true;
      this.h.closed(why);
    }
    close() { this.abort.abort(); this.finish('left'); }
  }

  class SseTransport {
    constructor(handlers) {
      this.h = handlers;
      this.name = 'sse';
      this.session = null;
      this.done = false;
      // One message per POST, naming the session.
      this.outbox = new Outbox(async (batch) => {
        const url = '/sse/send?session=' + encodeURIComponent(this.session);
        for (const text of batch) await post(url, text, 'application/json');
      }, (why) => this.finish(why));
      this.es = new EventSource('/sse/events');
      this.es.addEventListener('session', (e) => {
        this.session = JSON.parse(e.data).session;
        this.h.open('Server-Sent Events from /sse/events, POST to /sse/send');
        this.outbox.start();
      });
      this.es.onmessage = (e) => {
        this.h.message(e.data);
        // The server ends the stream right after `bye`; reconnecting would
        // find it gone.
        if (JSON.parse(e.data).type === 'bye') this.finish('server going away');
      };
      this.es.onerror = () => {
        // EventSource reconnects by itself (and resumes from the last event
        // id); CLOSED means the server said it is over (204).
        if (this.es.readyState === EventSource.CLOSED) this.finish('stream closed');
      };
    }
    send(text) { this.outbox.push(text); }
    finish(why) {
      if (this.done) return;
      this.done = true;
      this.es.close();
      this.h.closed(why);
    }
    close() { this.finish('left'); }
  }

  const TRANSPORTS = { websocket: WebSocketTransport, polling: PollingTransport, sse: SseTransport };

  // ---- the chat ------------------------------------------------------------

  const state = {
    transport: null,
    connected: false,
    joined: false,
    closedReason: null,
    name: '',
    room: '',
    sent: 0,
    received: 0,
    rtt: null,
    messages: [],     // every chat message shown, for tests and the log
    pings: new Map(), // ping id -> time sent
    nextPing: 1,
    pinger: null,
  };

  function setState(kind, label) {
    const el = $('state');
    el.dataset.state = kind;
    el.textContent = label;
  }

  function counters() {
    $('sent').textContent = state.sent;
    $('received').textContent = state.received;
    $('rtt').textContent = state.rtt === null ? '–' : state.rtt.toFixed(1) + ' ms';
  }

  function note(text) {
    const li = document.createElement('li');
    li.className = 'note';
    li.textContent = text;
    $('log').appendChild(li);
    li.scrollIntoView({ block: 'end' });
  }

  function showMessage(m) {
    state.messages.push(m);
    const li = document.createElement('li');
    li.className = 'msg' + (m.from === state.name ? ' mine' : '');
    li.dataset.from = m.from;
    li.dataset.text = m.text;
    const time = document.createElement('span');
    time.className = 'time';
    time.textContent = new Date(m.ts).toLocaleTimeString();
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = m.from;
    const via = document.createElement('span');
    via.className = 'via';
    via.textContent = ' via ' + m.via;
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = m.text;
    li.append(time, from, text, via);
    $('log').appendChild(li);
    li.scrollIntoView({ block: 'end' });
  }

  function showUsers(room, users) {
    $('room-name').textContent = room;
    const ul = $('users');
    ul.replaceChildren(...users.map((u) => {
      const li = document.createElement('li');
      li.textContent = u.name + ' ';
      const via = document.createElement('small');
      via.textContent = u.via;
      li.appendChild(via);
      return li;
    }));
  }

  function send(doc) {
    if (!state.transport) return;
    state.transport.send(JSON.stringify(doc));
    state.sent += 1;
    counters();
  }

  function onMessage(text) {
    state.received += 1;
    counters();
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    switch (m.type) {
      case 'welcome':
        $('rooms').replaceChildren(...m.rooms.map((r) => {
          const o = document.createElement('option');
          o.value = r;
          return o;
        }));
        send({ type: 'join', room: state.room, name: state.name });
        break;
      case 'joined':
        state.joined = true;
        $('log').replaceChildren();
        state.messages = [];
        note('You joined ' + m.room + ' as ' + m.name + ' over ' + state.transport.name + '.');
        m.history.forEach(showMessage);
        showUsers(m.room, m.users);
        $('text').disabled = false;
        $('send').disabled = false;
        $('text').focus();
        break;
      case 'presence':
        showUsers(m.room, m.users);
        break;
      case 'message':
        showMessage(m);
        break;
      case 'pong': {
        const t = state.pings.get(m.id);
        if (t !== undefined) {
          state.pings.delete(m.id);
          state.rtt = performance.now() - t;
          counters();
        }
        break;
      }
      case 'error':
        note('Server: ' + m.message);
        break;
      case 'bye':
        note('The server is going away: ' + m.reason + '.');
        break;
    }
  }

  function ping() {
    const id = state.nextPing++;
    state.pings.set(id, performance.now());
    if (state.pings.size > 20) state.pings.delete(state.pings.keys().next().value);
    send({ type: 'ping', id });
  }

  function connect() {
    disconnect();
    state.name = $('name').value.trim();
    state.room = $('room').value.trim();
    const kind = document.querySelector('input[name="transport"]:checked').value;
    state.closedReason = null;
    state.joined = false;
    setState('connecting', 'connecting…');
    $('live-transport').textContent = kind;
    $('connect').disabled = true;
    $('disconnect').disabled = false;
    const t = new TRANSPORTS[kind]({
      open(detail) {
        if (state.transport !== t) return;
        state.connected = true;
        setState('open', 'connected');
        $('transport-detail').textContent = detail;
        ping();
        state.pinger = setInterval(ping, 2000);
      },
      message(text) { if (state.transport === t) onMessage(text); },
      closed(why) {
        if (state.transport !== t) return;
        state.connected = false;
        state.joined = false;
        state.closedReason = why;
        clearInterval(state.pinger);
        setState('closed', 'closed');
        note('Disconnected (' + why + ').');
        $('text').disabled = true;
        $('send').disabled = true;
        $('connect').disabled = false;
        $('disconnect').disabled = true;
      },
    });
    state.transport = t;
  }

  function disconnect() {
    const t = state.transport;
    if (!t) return;
    t.close();
    state.transport = null;
    state.connected = false;
    state.joined = false;
    clearInterval(state.pinger);
    setState('idle', 'not connected');
    $('text').disabled = true;
    $('send').disabled = true;
    $('connect').disabled = false;
    $('disconnect').disabled = true;
  }

  function say(text) {
    if (!text.trim()) return;
    send({ type: 'say', text });
  }

  // ---- the /stats chart ----------------------------------------------------

  const series = { in: [], out: [], conn: [] };
  let last = null;
  const POINTS = 60;

  function draw() {
    const c = $('chart');
    const g = c.getContext('2d');
    g.clearRect(0, 0, c.width, c.height);
    const max = Math.max(1, ...series.in, ...series.out, ...series.conn);
    const line = (values, color) => {
      g.strokeStyle = color;
      g.lineWidth = 1.5;
      g.beginPath();
      values.forEach((v, i) => {
        const x = (c.width - 1) * (i + POINTS - values.length) / (POINTS - 1);
        const y = c.height - 4 - (c.height - 8) * v / max;
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    };
    const css = getComputedStyle(document.documentElement);
    line(series.conn, css.getPropertyValue('--conn'));
    line(series.in, css.getPropertyValue('--in'));
    line(series.out, css.getPropertyValue('--out'));
    g.fillStyle = '#6b7280';
    g.font = '10px system-ui';
    g.fillText('max ' + max, 4, 11);
  }

  async function pollStats() {
    try {
      const r = await fetch('/stats', { cache: 'no-store' });
      const s = await r.json();
      const now = performance.now();
      const conn = Object.values(s.connections).reduce((a, b) => a + b, 0);
      if (last) {
        const dt = Math.max(0.001, (now - last.t) / 1000);
        push(series.in, (s.messages.in - last.in) / dt);
        push(series.out, (s.messages.out - last.out) / dt);
      } else {
        push(series.in, 0);
        push(series.out, 0);
      }
      push(series.conn, conn);
      last = { t: now, in: s.messages.in, out: s.messages.out };
      $('connections').replaceChildren(...Object.entries(s.connections).map(([k, v]) => {
        const tr = document.createElement('tr');
        const a = document.createElement('td');
        a.textContent = k;
        const b = document.createElement('td');
        b.textContent = v;
        tr.append(a, b);
        return tr;
      }));
      $('totals').textContent = 'messages in ' + s.messages.in + ', out ' + s.messages.out +
        '; bytes in ' + s.bytes.in + ', out ' + s.bytes.out + '; sessions expired ' + s.sessions_expired;
      draw();
    } catch (e) {
      // The server is gone or restarting; try again on the next tick.
    }
  }

  function push(values, v) {
    values.push(Math.round(v * 10) / 10);
    if (values.length > POINTS) values.shift();
  }

  // ---- wiring --------------------------------------------------------------

  $('connect-form').addEventListener('submit', (e) => { e.preventDefault(); connect(); });
  $('disconnect').addEventListener('click', disconnect);
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    say($('text').value);
    $('text').value = '';
  });

  const params = new URLSearchParams(location.search);
  $('name').value = params.get('name') || 'guest-' + Math.random().toString(36).slice(2, 6);
  if (params.get('room')) $('room').value = params.get('room');
  const wanted = params.get('transport');
  if (wanted && TRANSPORTS[wanted]) {
    document.querySelector('input[name="transport"][value="' + wanted + '"]').checked = true;
  }
  pollStats();
  setInterval(pollStats, 1000);
  if (params.get('autoconnect') === '1') connect();

  // For the browser tests and the curious: the chat's state and verbs.
  window.duplexChat = { state, connect, disconnect, say };
})();
