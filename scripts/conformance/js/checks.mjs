// Shared by the conformance suites' Node checks: bounded waits, a loopback
// proxy that cuts connections, and the tally that prints the result lines
// the suite scripts read. Imports nothing from npm, so that every suite's
// cache can hold it: lib.sh's copy_mjs copies it next to the checks.

import net from "node:net";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function assert(cond, why) {
  if (!cond) throw new Error(why);
}

/// `promise`, or a rejection with `message` once `ms` have passed first.
export function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/// Polls `cond` every 10 ms until it holds; throws after `ms`.
export async function until(what, cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/// The arguments of the next `event` of `emitter`; rejects after `ms`.
export function once(emitter, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} in ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

/// A loopback TCP proxy to 127.0.0.1:`targetPort` (or `host`) that can cut
/// every connection (RST or FIN), send the next ones elsewhere, go silent
/// (a blackhole) and refuse new connections until `reopen`.
export function startProxy(targetPort, host = "127.0.0.1") {
  const conns = new Set();
  let target = targetPort;
  let open = true;
  const server = net.createServer((client) => {
    if (!open) return client.resetAndDestroy();
    const up = net.connect(target, host);
    const pair = { client, up };
    conns.add(pair);
    const end = () => conns.delete(pair);
    client.on("error", end).on("close", end);
    up.on("error", () => client.destroy()).on("close", () => client.destroy());
    client.on("close", () => up.destroy());
    client.pipe(up);
    up.pipe(client);
  });
  const proxy = {
    port: 0,
    /// Ends every connection (RST if `rst`, else FIN) and refuses new ones.
    cut(rst) {
      open = false;
      for (const { client, up } of conns) {
        if (rst) {
          client.resetAndDestroy();
          up.resetAndDestroy();
        } else {
          client.destroy();
          up.destroy();
        }
      }
      conns.clear();
    },
    /// As `cut`, and the connections after `reopen` go to `port`.
    cutTo(port, rst) {
      target = port;
      proxy.cut(rst);
    },
    reopen() {
      open = true;
    },
    /// Forwards nothing and passes no close; refuses new connections.
    blackhole() {
      open = false;
      for (const { client, up } of conns) {
        client.unpipe(up);
        up.unpipe(client);
        client.on("data", () => {});
        up.on("data", () => {});
      }
    },
    close() {
      server.close();
      for (const { client, up } of conns) {
        client.destroy();
        up.destroy();
      }
    },
  };
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      proxy.port = server.address().port;
      resolve(proxy);
    }),
  );
}

/// The tally of one run of checks. `check(name, fn)` runs one (bounded by
/// `timeoutMs` when given), prints `${pass}${name}` or
/// `${fail}${name}: ${why(error)}`, then awaits `after()`; `finish(summary)`
/// prints `${summary}: N passed, N failed`, the line the suite scripts read,
/// and exits, non-zero if a check failed.
export function tally({
  pass = "  PASS ",
  fail = "  FAIL ",
  timeoutMs = 0,
  timeoutMessage = (_name, ms) => `timed out after ${ms} ms`,
  why = (e) => (e && e.message ? e.message : e),
  after,
} = {}) {
  let passed = 0;
  let failed = 0;
  return {
    async check(name, fn) {
      try {
        await (timeoutMs ? withTimeout(fn(), timeoutMs, timeoutMessage(name, timeoutMs)) : fn());
        passed += 1;
        console.log(`${pass}${name}`);
      } catch (e) {
        failed += 1;
        console.log(`${fail}${name}: ${why(e)}`);
      } finally {
        if (after) await after();
      }
    },
    finish(summary) {
      console.log(`${summary}: ${passed} passed, ${failed} failed`);
      process.exit(failed ? 1 : 0);
    },
  };
}
