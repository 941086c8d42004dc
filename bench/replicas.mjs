// Scale-out bench: 3 replicas sharing a redis-server vs one process, on this machine.
//   node bench/replicas.mjs [--viewers N] [--rounds R] [--quick]
// - fan-out: a publish reaching 3×N viewers spread over 3 replicas, next to one process
//   with all 3×N viewers (time from the PUT to the last viewer's new_image);
// - the latency Redis adds: publish on A → first viewer on A, and → first viewer on B.
// Everything on loopback; every process is ours and stopped by PID. Medians of R rounds.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { makeTestJpegs } from './lib/jpeg.mjs';
import { BENCH_LIMITS_ENV, spawnNode, stopChild, sleep } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const quick = args.includes('--quick');
const N = arg('viewers', quick ? 50 : 300);
const ROUNDS = arg('rounds', quick ? 3 : 9);
const MAIN = new URL('../dist/main.js', import.meta.url).pathname;
const now = () => performance.now();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function until(probe, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(50);
  }
}

async function startRedis() {
  const port = await freePort();
  const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: 'ignore' });
  child.exited = new Promise((r) => child.once('exit', r));
  const ping = () =>
    new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
      s.once('data', (d) => (s.destroy(), resolve(d.toString().startsWith('+PONG'))));
      s.once('error', () => resolve(false));
    });
  await until(ping, 'redis-server');
  return { child, url: `redis://127.0.0.1:${port}` };
}


async function startService(env, folders) {
  const port = await freePort();
  const work = mkdtempSync(join(tmpdir(), 'stackcast-bench-replica-'));
  folders.push(work);
  const child = spawnNode([MAIN], { env: { PORT: String(port), WORK_FOLDER: work, ...BENCH_LIMITS_ENV, ...env }, inheritEnv: false, cwd: tmpdir(), label: `replica ${port}` });
  const base = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${base}/status`)).status === 200, `service on ${port}`);
  return { child, port, base };
}

/** N viewers on one service; each records when its next message arrives. */
async function viewers(service, n) {
  const clients = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${service.port}/ws`, { perMessageDeflate: false });
      const c = { ws, at: undefined };
      ws.on('message', (d) => {
        if (c.at === undefined && d.toString().includes('"new_image"')) {
          c.at = now();
        }
      });
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    }));
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

async function round(publishTo, groups, jpeg) {
  for (const g of groups) {
    for (const c of g) {
      c.at = undefined;
    }
  }
  const t0 = now();
  const res = await fetch(`${publishTo.base}/api/image`, { method: 'PUT', body: jpeg, headers: { 'Content-Type': 'image/jpeg' } });
  if (res.status !== 200) {
    throw new Error(`publish answered ${res.status}: ${await res.text()}`);
  }
  const all = groups.flat();
  await until(async () => all.every((c) => c.at !== undefined), 'every viewer', 30_000);
  const first = (g) => Math.min(...g.map((c) => c.at)) - t0;
  return { last: Math.max(...all.map((c) => c.at)) - t0, firstPer: groups.map(first) };
}

const folders = [];
const children = [];
try {
  const { images } = await makeTestJpegs(512 * 1024);
  const redis = await startRedis();
  children.push(redis.child);
  const env = { REDIS_URL: redis.url, REDIS_NAMESPACE: `bench-${process.pid}` };
  const cluster = [];
  for (let i = 0; i < 3; i++) {
    cluster.push(await startService(env, folders));
    children.push(cluster[i].child);
  }
  const single = await startService({}, folders);
  children.push(single.child);

  const clusterViewers = [];
  for (const r of cluster) {
    clusterViewers.push(await viewers(r, N));
  }
  const singleViewers = await viewers(single, 3 * N);

  const fan = { cluster: [], single: [], aFirst: [], bFirst: [], singleFirst: [] };
  for (let i = 0; i < ROUNDS + 1; i++) {
    const jpeg = images[i % 2];
    const c = await round(cluster[0], clusterViewers, jpeg);
    const s = await round(single, [singleViewers], jpeg);
    if (i === 0) {
      continue; // warm-up
    }
    fan.cluster.push(c.last);
    fan.aFirst.push(c.firstPer[0]);
    fan.bFirst.push(c.firstPer[1]);
    fan.single.push(s.last);
    fan.singleFirst.push(s.firstPer[0]);
  }
  const ms = (v) => `${median(v).toFixed(1)} ms`;
  console.log(`stackcast scale-out bench: ${images[0].length} B JPEG, ${ROUNDS} rounds (medians), all on this machine's ${(await import('node:os')).availableParallelism()} cores`);
  console.log(`| what | 3 replicas + Redis (${N} viewers each) | one process (${3 * N} viewers) |`);
  console.log('|---|---|---|');
  console.log(`| PUT → last of ${3 * N} viewers told | ${ms(fan.cluster)} | ${ms(fan.single)} |`);
  console.log(`| PUT → first viewer on the publishing replica | ${ms(fan.aFirst)} | ${ms(fan.singleFirst)} |`);
  console.log(`| PUT on A → first viewer on B (through Redis) | ${ms(fan.bFirst)} | – |`);
  for (const g of [...clusterViewers, singleViewers]) {
    for (const c of g) {
      c.ws.terminate();
    }
  }
} finally {
  for (const child of children.reverse()) {
    await stopChild(child);
  }
  for (const f of folders) {
    rmSync(f, { recursive: true, force: true });
  }
}
