// Hostile sockets from one LAN address (issue 19, points 1-3), over HTTP and HTTPS: the
// service runs under `prlimit --nofile=<nofile>`; one address (127.0.0.2) opens <sockets>
// sockets that each send one byte (HTTP) or the first byte of a handshake (HTTPS) and hold
// them. Printed: whether the process survived, sockets still held, RSS, /status from
// another address, the stacker's PUT from 127.0.0.1. Loopback only, bounded in count and time.
// Run after `npm run build`: node bench/hostile-sockets.mjs [sockets=1500] [nofile=1024] [holdMs=12000]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';

const count = Number(process.argv[2] ?? 1500);
const nofile = Number(process.argv[3] ?? 1024);
// Longer than the 10 s address re-read, so a timer that throws is seen.
const holdMs = Number(process.argv[4] ?? 12_000);
const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#203040' } }).jpeg().toBuffer();

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** One request; its status (or error code) and time. */
function ask(scheme, port, { path = '/status', method = 'GET', localAddress, body, headers = {} }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const request = scheme === 'https' ? httpsRequest : httpRequest;
    const req = request({ host: '127.0.0.1', port, path, method, localAddress, rejectUnauthorized: false, headers: { connection: 'close', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ code: res.statusCode, ms: performance.now() - t0 }));
    });
    req.setTimeout(5000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => resolve({ code: e.code ?? e.message, ms: performance.now() - t0 }));
    req.end(body);
  });
}

async function run(scheme) {
  const port = await freePort();
  const work = mkdtempSync(join(tmpdir(), 'stackcast-hostile-'));
  const env = { PATH: process.env.PATH, PORT: String(port), WORK_FOLDER: work, NO_COLOR: '1', ...(scheme === 'https' ? { TLS_SELF_SIGNED: 'true' } : {}) };
  const child = spawn('prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, 'dist/main.js'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  let exit;
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exit = code ?? signal))));
  const rss = () => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
    } catch {
      return NaN;
    }
  };
  // Sockets the service holds open: its fds that are sockets (the listener among them).
  const serverSockets = () => {
    try {
      return readdirSync(`/proc/${child.pid}/fd`).filter((fd) => {
        try {
          return readlinkSync(`/proc/${child.pid}/fd/${fd}`).startsWith('socket:');
        } catch {
          return false;
        }
      }).length;
    } catch {
      return NaN;
    }
  };
  for (let i = 0; i < 400 && (await ask(scheme, port, { localAddress: '127.0.0.1' })).code !== 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const base = rss();
  const sockets = [];
  let refusedAtConnect = 0;
  const t0 = performance.now();
  for (let i = 0; i < count && exit === undefined; i++) {
    const socket = await new Promise((resolve) => {
      const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => {
        // One byte: HTTP's first request byte, or a TLS handshake record's type.
        s.write(scheme === 'https' ? Buffer.from([0x16]) : 'G');
        s.resume();
        resolve(s);
      });
      s.on('error', () => {
        refusedAtConnect += 1;
        resolve(s);
      });
    });
    sockets.push(socket);
  }
  const floodMs = performance.now() - t0;
  const during = await ask(scheme, port, { localAddress: '127.0.0.3' });
  const put = await ask(scheme, port, { path: '/api/image', method: 'PUT', localAddress: '127.0.0.1', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
  const peak = rss();
  const heldDuring = serverSockets();
  await Promise.race([exited, new Promise((r) => setTimeout(r, holdMs))]);
  const held = serverSockets();
  const after = exit === undefined ? await ask(scheme, port, { localAddress: '127.0.0.3' }) : { code: 'dead', ms: 0 };
  const end = rss();
  const survived = exit === undefined;
  for (const s of sockets) {
    s.destroy();
  }
  child.kill('SIGTERM');
  await exited;
  rmSync(work, { recursive: true, force: true });
  // The first line of what ended the process (an uncaught error's message).
  const died = survived ? '' : (/^\w*Error\b[^\n]*/m.exec(log)?.[0] ?? log.trim().split('\n').at(-1) ?? '').replace(/\s+/g, ' ').slice(0, 140);
  console.log(
    `${scheme.padEnd(5)} nofile=${nofile}: ${count} one-byte sockets from 127.0.0.2 opened in ${floodMs.toFixed(0)} ms (${refusedAtConnect} failed to connect); ` +
      `sockets held by the service: ${heldDuring}; /status from 127.0.0.3 during: ${during.code} in ${during.ms.toFixed(0)} ms; stacker PUT from 127.0.0.1: ${put.code} in ${put.ms.toFixed(0)} ms`,
  );
  console.log(
    `${' '.repeat(6)}after ${holdMs} ms: process ${survived ? 'alive' : `EXITED (${exit}) ${died}`}; sockets held by the service: ${Number.isNaN(held) ? '-' : held}; ` +
      `/status from 127.0.0.3: ${after.code}${after.code === 'dead' ? '' : ` in ${after.ms.toFixed(0)} ms`}; RSS idle ${base.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, end ${Number.isNaN(end) ? '-' : end.toFixed(0)} MB`,
  );
}

console.log(`# ${new Date().toISOString()} node bench/hostile-sockets.mjs ${count} ${nofile} ${holdMs}`);
for (const scheme of ['http', 'https']) {
  await run(scheme);
}
