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

export class ReplayPhone {
  constructor(port) {
    this.port = port;
    this.agent = new Agent({ keepAlive: true, maxSockets: 6 });
    this.armed = null;
  }

  connect(timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(`ws://127.0.0.1:${this.port}/ws`);
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
    const done = [];
    for (const r of plan.requests) {
      const path = rewrite(r.path, plan, version);
      done.push(Promise.all(r.deps.map((j) => done[j])).then(() => get(this.port, path, this.agent)));
    }
    const results = await Promise.all(done);
    return {
      triggeredAt,
      doneAt: nowMs(),
      version,
      bytes: results.reduce((s, r) => s + r.bytes, 0),
      statuses: results.map((r) => r.status),
    };
  }

  close() {
    this.ws?.terminate();
    this.agent.destroy();
  }
}

/** PUT /api/image from the publisher address (unshaped: the stacker is on the laptop). */
export function publish(port, jpeg) {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/api/image', method: 'PUT', localAddress: PUBLISHER_ADDRESS, headers: { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`PUT /api/image: ${res.statusCode} ${body}`))));
      },
    );
    req.on('error', reject);
    req.end(jpeg);
  });
}

/** GET from `localAddress` (shaped or not); resolves with bytes and seconds. */
export function download(port, path, localAddress) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = request({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ bytes, seconds: (nowMs() - t0) / 1000 }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A /ws client that remembers the last new_image (its version) and when it came. */
export class Monitor {
  constructor(port) {
    this.port = port;
    this.last = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(`ws://127.0.0.1:${this.port}/ws`);
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
