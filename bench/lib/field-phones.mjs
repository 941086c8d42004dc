// Simulated phones of the field bench: each holds a real /ws connection and, on new_image,
// replays a recorded request list over its own keep-alive agent of at most 6 sockets (what
// a browser opens per host), counting the bytes it receives as they arrive on the wire.
import { request } from 'node:http';
import { Agent } from 'node:http';
import { WebSocket } from 'ws';
import { PUBLISHER_ADDRESS } from './netns.mjs';
import { nowMs } from './proc.mjs';

const MOBILE_UA = 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36';

/**
 * A replay plan from a recorded request list (entries with url, start, end): request i may
 * start once every request that had finished before it started in the recording is done
 * (descriptor before tiles), and `/v/<recorded version>/` becomes the announced version.
 */
export function makePlan(entries, recordedVersion) {
  const sorted = [...entries].sort((a, b) => a.start - b.start);
  return {
    recordedVersion,
    requests: sorted.map((e, i) => ({
      path: new URL(e.url).pathname + new URL(e.url).search,
      deps: sorted.flatMap((d, j) => (j !== i && d.end <= e.start ? [j] : [])),
      bytes: e.bytes,
    })),
  };
}

function rewrite(path, plan, version) {
  if (plan.recordedVersion == null || version == null || version === plan.recordedVersion) {
    return path;
  }
  return path.replaceAll(`/v/${plan.recordedVersion}/`, `/v/${version}/`);
}

/** Raw size of the status line and headers as they came over the socket. */
function headerBytes(res) {
  let n = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}\r\n`.length + 2;
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    n += res.rawHeaders[i].length + res.rawHeaders[i + 1].length + 4;
  }
  return n;
}

function get(port, path, agent, retry = true) {
  return new Promise((resolve, reject) => {
    let got = false;
    const req = request(
      { host: '127.0.0.1', port, path, agent, headers: { 'User-Agent': MOBILE_UA, Accept: '*/*', 'Accept-Encoding': 'gzip, deflate, br' } },
      (res) => {
        got = true;
        let bytes = headerBytes(res);
        res.on('data', (chunk) => (bytes += chunk.length));
        res.on('end', () => resolve({ status: res.statusCode, bytes }));
        res.on('error', reject);
      },
    );
    // A keep-alive socket the server closed just as it was reused: one fresh attempt.
    req.on('error', (err) => (!got && retry && err.code === 'ECONNRESET' ? get(port, path, agent, false).then(resolve, reject) : reject(err)));
    req.end();
  });
}

/** Replays `plan` over `agent` (request i after its deps); resolves with bytes and statuses. */
export async function replayPlan(port, agent, plan, version) {
  const done = [];
  for (const r of plan.requests) {
    const path = rewrite(r.path, plan, version);
    done.push(Promise.all(r.deps.map((j) => done[j])).then(() => get(port, path, agent)));
  }
  const results = await Promise.all(done);
  return { bytes: results.reduce((s, r) => s + r.bytes, 0), statuses: results.map((r) => r.status) };
}

export class ReplayPhone {
  /** `wsPath`: the viewer's socket, `/ws` at the root or `/s/<id>/ws` for a scope. */
  constructor(port, wsPath = '/ws') {
    this.port = port;
    this.wsPath = wsPath;
    this.agent = new Agent({ keepAlive: true, maxSockets: 6 });
    this.armed = null;
  }

  connect(timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(`ws://127.0.0.1:${this.port}${this.wsPath}`);
      const timer = setTimeout(() => reject(new Error('ws connect timed out')), timeoutMs);
      this.ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      this.ws.on('message', (data) => this.onMessage(String(data)));
    });
  }

  onMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg?.type !== 'new_image' || !this.armed) {
      return;
    }
    const { plan, resolve, reject } = this.armed;
    this.armed = null;
    this.replay(plan, msg.version, nowMs()).then(resolve, reject);
  }

  /** Resolves with the timing and bytes of the replay the next new_image triggers. */
  arm(plan, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.armed = null;
        reject(new Error(`phone: no complete update within ${timeoutMs} ms`));
      }, timeoutMs);
      this.armed = {
        plan,
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }

  async replay(plan, version, triggeredAt) {
    const { bytes, statuses } = await replayPlan(this.port, this.agent, plan, version);
    return { triggeredAt, doneAt: nowMs(), version, bytes, statuses };
  }

  close() {
    this.ws?.terminate();
    this.agent.destroy();
  }
}

/** PUT /api/image (or `path`, e.g. `/s/<id>/api/image`) from the publisher address (unshaped: the stacker is on the laptop). */
export function publish(port, jpeg, path = '/api/image', type = 'image/jpeg') {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'PUT', localAddress: PUBLISHER_ADDRESS, headers: { 'Content-Type': type, 'Content-Length': jpeg.length } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`PUT ${path}: ${res.statusCode} ${body}`))));
      },
    );
    req.on('error', reject);
    req.end(jpeg);
  });
}

/** GET from `localAddress` (shaped or not); resolves with status, bytes and seconds. */
export function download(port, path, localAddress) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = request({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes, seconds: (nowMs() - t0) / 1000 }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A /ws client that remembers the last new_image (its version) and when it came. */
export class Monitor {
  constructor(port, wsPath = '/ws') {
    this.port = port;
    this.wsPath = wsPath;
    this.last = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(`ws://127.0.0.1:${this.port}${this.wsPath}`);
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.on('message', (data) => {
        try {
          const msg = JSON.parse(String(data));
          if (msg?.type === 'new_image') {
            this.last = { at: nowMs(), version: typeof msg.version === 'number' ? msg.version : null };
          }
        } catch {
          // not JSON: not ours
        }
      });
    });
  }

  close() {
    this.ws?.terminate();
  }
}

/** Bytes of a server-to-client WebSocket frame around a payload of `n` bytes (unmasked). */
const frameBytes = (n) => n + (n < 126 ? 2 : n < 65536 ? 4 : 10);

/**
 * A simulated lobby phone (GET /scopes): loads the page once (a recorded request list, less
 * the thumbnails), holds `/scopes/ws` and, on each `{"type":"scopes"}` list, GETs every
 * thumbnail whose URL changed, as lobby.js does. Counts the frames' and the GETs' bytes.
 */
export class LobbyPhone {
  constructor(port) {
    this.port = port;
    this.agent = new Agent({ keepAlive: true, maxSockets: 6 });
    /** Per scope id: the thumbnail URL last seen, and the version whose thumbnail arrived. */
    this.urls = new Map();
    this.have = new Map();
    this.wsBytes = 0;
    this.thumbnailBytes = 0;
    this.messages = 0;
    this.statuses = [];
    this.pending = 0;
    this.waiters = new Set();
    /** Each thumbnail that arrived: { id, version, at }. */
    this.arrivals = [];
  }

  /** The page (`pagePlan`), the socket, then every thumbnail of the first list. */
  async load(pagePlan, timeoutMs = 60_000) {
    const t0 = nowMs();
    const page = await replayPlan(this.port, this.agent, pagePlan, null);
    this.statuses.push(...page.statuses);
    await new Promise((resolve, reject) => {
      this.ws = new WebSocket(`ws://127.0.0.1:${this.port}/scopes/ws`);
      this.ws.on('error', reject); // after the first list: the round's timeout reports it
      this.ws.on('message', (data) => {
        this.onMessage(String(data), data.length);
        resolve();
      });
    });
    await this.until(() => this.pending === 0, timeoutMs);
    return { ms: nowMs() - t0, bytes: page.bytes + this.wsBytes + this.thumbnailBytes, pageBytes: page.bytes, requests: pagePlan.requests.length + this.have.size };
  }

  onMessage(text, length) {
    this.wsBytes += frameBytes(length);
    this.messages += 1;
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg?.type !== 'scopes' || !Array.isArray(msg.scopes)) {
      return;
    }
    for (const s of msg.scopes) {
      if (!(s?.version > 0) || typeof s.thumbnail !== 'string' || this.urls.get(s.id) === s.thumbnail) {
        continue;
      }
      this.urls.set(s.id, s.thumbnail);
      this.pending += 1;
      get(this.port, s.thumbnail, this.agent).then(
        (r) => {
          this.thumbnailBytes += r.bytes;
          this.statuses.push(r.status);
          this.have.set(s.id, Math.max(this.have.get(s.id) ?? 0, s.version));
          this.arrivals.push({ id: s.id, version: s.version, at: nowMs() });
          this.pending -= 1;
          this.check();
        },
        () => {
          this.statuses.push(0);
          this.pending -= 1;
          this.check();
        },
      );
    }
    this.check();
  }

  check() {
    for (const w of this.waiters) {
      if (w.test()) {
        w.resolve(nowMs());
      }
    }
  }

  /** Resolves with the time `test()` first holds (checked on each message and thumbnail). */
  until(test, timeoutMs) {
    if (test()) {
      return Promise.resolve(nowMs());
    }
    return new Promise((resolve, reject) => {
      const w = {
        test,
        resolve: (at) => (clearTimeout(timer), this.waiters.delete(w), resolve(at)),
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`lobby phone: not done within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Resolves when each scope of `before` (id → version) has the thumbnail of a newer version. */
  newerThan(before, timeoutMs) {
    return this.until(() => [...before].every(([id, v]) => (this.have.get(id) ?? 0) > v), timeoutMs);
  }

  /** When the first thumbnail of scope `id` newer than `version` arrived (NaN: none yet). */
  arrivalAfter(id, version) {
    const ats = this.arrivals.filter((a) => a.id === id && a.version > version).map((a) => a.at);
    return ats.length ? Math.min(...ats) : NaN;
  }

  /** The thumbnail version each scope has now. */
  versions() {
    return new Map(this.have);
  }

  counters() {
    return { wsBytes: this.wsBytes, thumbnailBytes: this.thumbnailBytes, messages: this.messages };
  }

  close() {
    this.ws?.terminate();
    this.agent.destroy();
  }
}
