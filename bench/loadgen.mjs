// The load generator, in its own process, driven over IPC by bench/run.mjs.
//  - groups of WebSocket viewers (offering permessage-deflate, as browsers do), one group
//    per server under test, kept open across the whole fan-out phase;
//  - `arm` + `wait`: the receipt time of the next message at every viewer of a group;
//  - `burst`: C phones fetching web_image.jpg at once, each on a new connection;
//  - `steady`: a keep-alive GET loop (used only when wrk is not installed).
import { request } from 'node:http';
import { WebSocket } from 'ws';

const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;

/** @type {Map<string, { clients: WebSocket[], op: Op | undefined }>} */
const groups = new Map();
let sourceTurn = 0;

/**
 * @typedef {{ times: Float64Array, got: Uint8Array, count: number, n: number,
 *   done: Promise<void>, finish: () => void, timer: NodeJS.Timeout | undefined }} Op
 */

function group(name) {
  let g = groups.get(name);
  if (!g) {
    g = { clients: [], op: undefined };
    groups.set(name, g);
  }
  return g;
}

function openOne(g, url, sources, timeoutMs) {
  return new Promise((resolve) => {
    const localAddress = sources[sourceTurn++ % sources.length];
    const ws = new WebSocket(url, { perMessageDeflate: true, localAddress, handshakeTimeout: timeoutMs });
    const index = g.clients.length;
    g.clients.push(ws);
    ws.on('message', () => {
      const op = g.op;
      if (op && !op.got[index]) {
        op.times[index] = now();
        op.got[index] = 1;
        if (++op.count === op.n) {
          op.finish();
        }
      }
    });
    ws.on('error', () => undefined);
    ws.once('open', () => resolve(true));
    ws.once('close', () => resolve(false));
  });
}

async function connect({ group: name, url, total, sources, concurrency = 64, timeoutMs = 30_000 }) {
  const g = group(name);
  const began = now();
  const deadline = began + timeoutMs;
  let failed = 0;
  const open = () => g.clients.filter((c) => c.readyState === WebSocket.OPEN).length;
  // Bounded: at most twice `total` attempts, and never past the deadline. A failed
  // client stays in the list, closed: indexes are captured by the message handlers.
  let attempts = 0;
  while (open() < total && attempts < total * 2 && now() < deadline) {
    const missing = total - open();
    const batch = [];
    for (let i = 0; i < missing; i++) {
      attempts++;
      batch.push(openOne(g, url, sources, timeoutMs));
      if (batch.length >= concurrency) {
        failed += (await Promise.all(batch.splice(0))).filter((ok) => !ok).length;
      }
    }
    failed += (await Promise.all(batch)).filter((ok) => !ok).length;
  }
  return { open: open(), failed, ms: now() - began };
}

function arm({ group: name, timeoutMs }) {
  const g = group(name);
  const size = g.clients.length;
  const n = g.clients.filter((c) => c.readyState === WebSocket.OPEN).length;
  let finish;
  const done = new Promise((resolve) => (finish = resolve));
  const op = { times: new Float64Array(size), got: new Uint8Array(size), count: 0, n, done, finish, timer: undefined };
  op.timer = setTimeout(op.finish, timeoutMs);
  g.op = op;
  return { n };
}

async function wait({ group: name }) {
  const g = group(name);
  const op = g.op;
  if (!op) {
    throw new Error('wait without arm');
  }
  await op.done;
  clearTimeout(op.timer);
  g.op = undefined;
  const times = [];
  for (let i = 0; i < op.got.length; i++) {
    if (op.got[i]) {
      times.push(op.times[i]);
    }
  }
  return { n: op.n, received: op.count, times };
}

async function closeGroup({ group: name }) {
  const g = groups.get(name);
  if (!g) {
    return { closed: 0 };
  }
  const closing = g.clients.map(
    (ws) =>
      new Promise((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) {
          resolve();
          return;
        }
        ws.once('close', resolve);
        ws.terminate();
      }),
  );
  await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 5000))]);
  groups.delete(name);
  return { closed: closing.length };
}

function get(url, localAddress, agent) {
  return new Promise((resolve) => {
    const req = request(url, { agent, localAddress, headers: { accept: 'image/avif,image/webp,*/*' } }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => (bytes += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes, end: now() }));
      res.on('error', () => resolve({ status: 0, bytes, end: now() }));
    });
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, bytes: 0, end: now() }));
    req.end();
  });
}

/** C phones fetch the image at once, each on a fresh connection (agent: false). */
async function burst({ url, clients, sources }) {
  const start = now();
  const results = await Promise.all(
    Array.from({ length: clients }, (_, i) => get(`${url}?t=${start}-${i}`, sources[i % sources.length], false)),
  );
  const ok = results.filter((r) => r.status === 200);
  return {
    start,
    ends: ok.map((r) => r.end),
    ok: ok.length,
    failed: results.length - ok.length,
    bytes: ok.reduce((s, r) => s + r.bytes, 0),
  };
}

/** Keep-alive GET loops for `seconds` (the fallback when wrk is missing). */
async function steady({ url, connections, seconds, sources }) {
  const { Agent } = await import('node:http');
  const start = now();
  const until = start + seconds * 1000;
  let requests = 0;
  let bytes = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      // Bounded by time, and by a count no loopback run can reach.
      for (let k = 0; k < 1_000_000 && now() < until; k++) {
        const r = await get(url, sources[i % sources.length], agent);
        if (r.status === 200) {
          requests++;
          bytes += r.bytes;
        } else {
          errors++;
        }
      }
      agent.destroy();
    }),
  );
  return { requests, bytes, errors, seconds: (now() - start) / 1000 };
}

const commands = { connect, arm, wait, closeGroup, burst, steady };

process.on('message', (msg) => {
  const fn = commands[msg.cmd];
  if (!fn) {
    process.send({ id: msg.id, ok: false, error: `unknown command ${msg.cmd}` });
    return;
  }
  Promise.resolve()
    .then(() => fn(msg))
    .then(
      (result) => process.send({ id: msg.id, ok: true, ...result }),
      (err) => process.send({ id: msg.id, ok: false, error: String(err?.stack ?? err) }),
    );
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready' });
