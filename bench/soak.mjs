#!/usr/bin/env node
// Soak (issue 13): V real /ws viewers stay connected while P images are published one
// after another; every viewer must get every new_image exactly once, and the service's
// RSS must stay flat. Loopback only, bounded in time. See bench/README.md.
//
//   npm run bench:soak                     1000 viewers × 500 publishes
//   npm run bench:soak -- --quick          100 viewers × 50 publishes
//   options: --viewers <V>  --publishes <P>  --dist <dir> (default dist/)  --deadline <s>
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import WebSocket from 'ws';
import { elapsedSeconds, flag, logger, option, tempFolders } from './lib/cli.mjs';
import { freePort, hardFileLimit, nowMs, sleep, sourceAddresses, spawnNode, statusUp, stopChild, waitUntilUp } from './lib/proc.mjs';
import { quantile, slope } from './lib/stats.mjs';
import { renderTable } from './lib/table.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
function positiveInt(name, fallback) {
  const raw = option(name);
  if (raw === undefined) {
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

const QUICK = flag('--quick');
const VIEWERS = positiveInt('--viewers', QUICK ? 100 : 1000);
const PUBLISHES = positiveInt('--publishes', QUICK ? 50 : 500);
/** RSS is read every 50 publishes (more often on short runs, so the slope has points). */
const SAMPLE_EVERY = Math.max(1, Math.min(50, Math.floor(PUBLISHES / 10)));
/** Publishes before the slope is taken: the heap, caches and JIT settle first. */
const WARMUP = Math.round(PUBLISHES / 5);
/** "Flat": RSS grows less than this after the warm-up. */
const FLAT_MB_PER_100 = 5;
const CONNECT_BATCH = 100;
const DRAIN_TIMEOUT_MS = 30_000;
// Generous for a loaded 2-core machine: 2 min plus 1 ms per delivered message.
const DEADLINE_MS = positiveInt('--deadline', Math.round(120 + (VIEWERS * PUBLISHES) / 1000)) * 1000;
const BENCH_LIMITS_ENV = {
  MAX_VIEWERS: String(VIEWERS + 100),
  MAX_VIEWERS_PER_ADDRESS: String(VIEWERS + 100),
  MAX_CONNECTIONS: String(VIEWERS + 1000),
  MAX_CONNECTIONS_PER_ADDRESS: String(VIEWERS + 1000),
  UPGRADE_BURST: String(VIEWERS + 100),
  UPGRADES_PER_SECOND: '100000',
};

const log = logger('soak');
const children = [];
const { tempDir, removeTemps } = tempFolders();
const viewers = [];

/** Memory of the service after a full GC it runs on SIGUSR2: { rss, live } in MB. */
function afterGc(child) {
  return new Promise((resolveGc, reject) => {
    const timer = setTimeout(() => reject(new Error('the service did not report its memory after a GC within 15 s')), 15_000);
    child.gcWaiters.push((m) => {
      clearTimeout(timer);
      resolveGc({ rss: m.rss / 1024 ** 2, live: m.live / 1024 ** 2 });
    });
    child.kill('SIGUSR2');
  });
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) {
    throw new Error(`no VmRSS in /proc/${pid}/status`);
  }
  return Number(m[1]) / 1024;
}

/** P small distinct JPEGs (320×240 Gaussian noise around a mean that moves with i). */
async function makeImages(count) {
  const images = [];
  const hashes = new Set();
  for (let i = 0; i < count; i++) {
    const jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 40 + (i % 150), sigma: 20 + (i % 30) } } })
      .jpeg({ quality: 80 })
      .toBuffer();
    hashes.add(createHash('sha1').update(jpeg).digest('hex'));
    images.push(jpeg);
  }
  if (hashes.size !== count) {
    throw new Error(`only ${hashes.size} of ${count} test JPEGs are distinct`);
  }
  return images;
}

// Loaded into the service by the bench only: SIGUSR2 runs a full GC and reports the memory
// after it, so a leak is told from garbage V8 has not collected yet.
const GC_HOOK = `process.on('SIGUSR2', () => {
  globalThis.gc();
  const m = process.memoryUsage();
  process.stderr.write('soak-gc ' + JSON.stringify({ rss: m.rss, live: m.heapUsed + m.external }) + '\\n');
});
`;

async function startService(dist, workFolder) {
  const port = await freePort();
  const cwd = tempDir('stackcast-soak-cwd-');
  const hook = join(cwd, 'soak-gc-hook.mjs');
  writeFileSync(hook, GC_HOOK);
  // Clean environment and a temp cwd: no .env or CONTROL_TOKEN of the machine leaks in.
  const child = spawnNode(['--expose-gc', '--import', hook, join(dist, 'main.js')], {
    label: 'stackcast',
    cwd,
    env: { PORT: String(port), WORK_FOLDER: workFolder, ...BENCH_LIMITS_ENV },
    inheritEnv: false,
  });
  children.push(child);
  let gcLine = '';
  child.gcWaiters = [];
  child.stderr.on('data', (d) => {
    gcLine += d.toString();
    let nl;
    while ((nl = gcLine.indexOf('\n')) >= 0) {
      const line = gcLine.slice(0, nl);
      gcLine = gcLine.slice(nl + 1);
      if (line.startsWith('soak-gc ')) {
        child.gcWaiters.shift()?.(JSON.parse(line.slice(8)));
      }
    }
  });
  await waitUntilUp(child, join(dist, 'main.js'), () => statusUp(port), 50);
  return { child, port };
}

/** One viewer: records every new_image (its version, or null when the server sends none). */
function connectViewer(port, localAddress, index) {
  return new Promise((resolveOpen, reject) => {
    const viewer = { index, localAddress, received: [], ws: undefined, closed: false };
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { localAddress, handshakeTimeout: 15_000 });
    viewer.ws = ws;
    ws.on('message', (data) => {
      let msg;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (msg?.type === 'new_image') {
        viewer.received.push(typeof msg.version === 'number' ? msg.version : null);
      }
    });
    ws.once('open', () => resolveOpen(viewer));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`viewer ${index} (${localAddress}): upgrade refused with ${res.statusCode}`)));
    ws.once('error', (err) => reject(new Error(`viewer ${index} (${localAddress}): ${err.message}`)));
    ws.once('close', () => {
      viewer.closed = true;
    });
  });
}

async function putImage(port, jpeg, stackSize) {
  const res = await fetch(`http://127.0.0.1:${port}/api/image?stackSize=${stackSize}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'image/jpeg' },
    body: jpeg,
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (res.status !== 200) {
    throw new Error(`PUT /api/image?stackSize=${stackSize}: ${res.status} ${text}`);
  }
  return JSON.parse(text);
}

/** Per viewer: lost and duplicated new_image messages, by version when the server sends them. */
function checkViewer(received, expected) {
  const versions = received.filter((v) => v !== null);
  if (versions.length === received.length && received.length > 0) {
    const distinct = new Set(versions);
    let increasing = true;
    for (let i = 1; i < versions.length; i++) {
      increasing &&= versions[i] > versions[i - 1];
    }
    return { byVersion: true, lost: Math.max(0, expected - distinct.size), duplicated: versions.length - distinct.size, increasing };
  }
  return { byVersion: false, lost: Math.max(0, expected - received.length), duplicated: Math.max(0, received.length - expected), increasing: null };
}

function fmt(n, digits = 1) {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

async function main() {
  const dist = resolve(ROOT, option('--dist') ?? 'dist');
  if (!existsSync(join(dist, 'main.js'))) {
    throw new Error(`${join(dist, 'main.js')} is missing: run \`npm run build\``);
  }
  if (hardFileLimit() < VIEWERS + 256) {
    throw new Error(`the open-files hard limit (${hardFileLimit()}) is below the ${VIEWERS + 256} this run needs`);
  }
  log(`${VIEWERS} viewers × ${PUBLISHES} publishes; ${cpus().length} CPU(s), load ${loadavg().map((l) => l.toFixed(1)).join(' ')}; deadline ${DEADLINE_MS / 1000} s`);
  const images = await makeImages(PUBLISHES);
  log(`${PUBLISHES} distinct 320×240 JPEGs, ${Math.min(...images.map((b) => b.length))}–${Math.max(...images.map((b) => b.length))} bytes`);

  const { child, port } = await startService(dist, tempDir('stackcast-soak-work-'));
  const pid = child.pid;
  log(`service: node ${join(dist, 'main.js')} pid ${pid} on 127.0.0.1:${port}, RSS ${fmt(rssMb(pid))} MB`);

  const sources = await sourceAddresses();
  const t0 = nowMs();
  for (let i = 0; i < VIEWERS; i += CONNECT_BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(VIEWERS, i + CONNECT_BATCH); j++) {
      batch.push(connectViewer(port, sources[j % sources.length], j));
    }
    viewers.push(...(await Promise.all(batch)));
  }
  log(`${viewers.length} viewers open from ${sources.join(', ')} in ${fmt(nowMs() - t0, 0)} ms`);
  await sleep(500);

  // Each sample: VmRSS as it is, then RSS and live heap (used + external) after a full GC.
  const sample = async (publishes) => {
    const mb = rssMb(pid);
    const gc = await afterGc(child);
    return { publishes, mb, gcRss: gc.rss, live: gc.live };
  };
  const rss = [await sample(0)];
  const putMs = [];
  const versions = [];
  const tp = nowMs();
  for (let i = 1; i <= PUBLISHES; i++) {
    const t = nowMs();
    const answer = await putImage(port, images[i - 1], i);
    putMs.push(nowMs() - t);
    if (typeof answer.version === 'number') {
      versions.push(answer.version);
    }
    if (i % SAMPLE_EVERY === 0 || i === PUBLISHES) {
      rss.push(await sample(i));
    }
    if (i % Math.max(1, Math.round(PUBLISHES / 5)) === 0) {
      log(`${i} published, RSS ${fmt(rss.at(-1).mb)} MB, after GC ${fmt(rss.at(-1).gcRss)} MB (live ${fmt(rss.at(-1).live)} MB)`);
    }
  }
  const publishSeconds = (nowMs() - tp) / 1000;

  // Every PUT has answered (broadcast sent); wait for the frames still in flight.
  const drainUntil = Date.now() + DRAIN_TIMEOUT_MS;
  while (Date.now() < drainUntil && viewers.some((v) => !v.closed && v.received.length < PUBLISHES)) {
    await sleep(50);
  }
  const end = await sample(PUBLISHES);
  const stillConnected = viewers.filter((v) => !v.closed && v.ws.readyState === WebSocket.OPEN).length;

  const checks = viewers.map((v) => checkViewer(v.received, PUBLISHES));
  const lost = checks.reduce((s, c) => s + c.lost, 0);
  const duplicated = checks.reduce((s, c) => s + c.duplicated, 0);
  const byVersion = checks.some((c) => c.byVersion);
  const notIncreasing = checks.filter((c) => c.increasing === false).length;
  const viewersShort = checks.filter((c) => c.lost > 0).length;
  const delivered = viewers.reduce((s, v) => s + v.received.length, 0);

  const after = rss.filter((r) => r.publishes >= WARMUP);
  const per100 = (key) => slope(after.map((r) => [r.publishes, r[key]])) * 100;
  const mbPer100 = per100('gcRss');
  const rawPer100 = per100('mb');
  const livePer100 = per100('live');
  const flat = Number.isFinite(mbPer100) && mbPer100 < FLAT_MB_PER_100;
  const sortedPut = [...putMs].sort((a, b) => a - b);
  const ok = lost === 0 && duplicated === 0 && notIncreasing === 0 && stillConnected === VIEWERS;

  const rows = [
    { section: 'delivery', figure: 'viewers connected at the start / at the end', value: `${viewers.length} / ${stillConnected}`, target: `${VIEWERS} / ${VIEWERS}` },
    { section: 'delivery', figure: 'new_image messages received', value: `${delivered} of ${VIEWERS * PUBLISHES}`, target: '' },
    { section: 'delivery', figure: 'lost', value: `${lost} (${viewersShort} viewers short)`, target: '0' },
    { section: 'delivery', figure: 'duplicated', value: String(duplicated), target: '0' },
    {
      section: 'delivery',
      figure: 'checked by',
      value: byVersion ? `version (${notIncreasing} viewers not strictly increasing)` : 'count (messages carry no version)',
      target: '',
    },
    { section: 'publishing', figure: 'PUT /api/image, p50 / p99 / max (ms)', value: `${fmt(quantile(sortedPut, 0.5))} / ${fmt(quantile(sortedPut, 0.99))} / ${fmt(sortedPut.at(-1))}`, target: '' },
    { section: 'publishing', figure: 'publishes per second', value: fmt(PUBLISHES / publishSeconds), target: '' },
    { section: 'memory', figure: 'RSS before publishing / after the last (MB)', value: `${fmt(rss[0].mb)} / ${fmt(end.mb)}`, target: '' },
    { section: 'memory', figure: 'the same after a full GC (MB)', value: `${fmt(rss[0].gcRss)} / ${fmt(end.gcRss)}`, target: '' },
    { section: 'memory', figure: 'live heap + external after a GC (MB)', value: `${fmt(rss[0].live)} / ${fmt(end.live)}`, target: '' },
    {
      section: 'memory',
      figure: `RSS after GC, slope after ${WARMUP} publishes (MB/100 publishes)`,
      value: `${fmt(mbPer100, 2)} (${flat ? 'flat' : 'NOT flat'})`,
      target: `< ${FLAT_MB_PER_100}`,
    },
    { section: 'memory', figure: 'slopes of RSS as is / live heap (MB/100 publishes)', value: `${fmt(rawPer100, 2)} / ${fmt(livePer100, 2)}`, target: '' },
  ];
  process.stdout.write(
    `\nstackcast soak: ${VIEWERS} viewers × ${PUBLISHES} publishes (320×240 JPEGs), node ${join(dist, 'main.js')}, ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load ${loadavg()[0].toFixed(1)}, Node ${process.version}\n\n` +
      `${renderTable(rows, [
        ['figure', 'figure', 'left'],
        ['value', 'value', 'right'],
        ['target', 'target', 'left'],
      ])}\n\n` +
      `RSS (MB) every ${SAMPLE_EVERY} publishes, as is: ${rss.map((r) => `${r.publishes}:${fmt(r.mb)}`).join(' ')}\n` +
      `after a full GC: ${rss.map((r) => `${r.publishes}:${fmt(r.gcRss)}`).join(' ')}\n` +
      `verdict: ${ok ? '0 lost, 0 duplicated, every viewer still connected' : 'DELIVERY FAILED'}; RSS ${flat ? 'flat' : 'NOT flat'}` +
      `${QUICK ? ' (quick run: too short for the RSS verdict, indicative only)' : ''}\n`,
  );

  const resultsDir = join(BENCH, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `soak-${QUICK ? 'quick-' : ''}${new Date().toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        when: new Date().toISOString(),
        mode: QUICK ? 'quick' : 'full',
        machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg: loadavg() },
        config: { viewers: VIEWERS, publishes: PUBLISHES, sampleEvery: SAMPLE_EVERY, warmup: WARMUP, flatMbPer100: FLAT_MB_PER_100, limits: BENCH_LIMITS_ENV },
        sources,
        delivery: { delivered, lost, duplicated, viewersShort, notIncreasing, byVersion, stillConnected, ok },
        publishing: { seconds: publishSeconds, putMs: { p50: quantile(sortedPut, 0.5), p99: quantile(sortedPut, 0.99), max: sortedPut.at(-1) }, versionsAnswered: versions.length },
        rss: { samples: rss, end, mbPer100AfterGc: mbPer100, mbPer100AsIs: rawPer100, liveMbPer100: livePer100, flat },
        rows,
        durationSeconds: elapsedSeconds(),
      },
      null,
      2,
    ),
  );
  log(`results: ${file} (${elapsedSeconds().toFixed(0)} s in all)`);
  // A quick run is too short for the slope (native caches still filling): delivery only.
  return ok && (flat || QUICK);
}

async function cleanup() {
  for (const v of viewers.splice(0)) {
    v.ws.terminate();
  }
  for (const c of children.splice(0)) {
    await stopChild(c);
  }
  removeTemps();
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`soak: ${signal}, stopping the service it started\n`);
    void cleanup().then(() => process.exit(130));
  });
}
const deadline = setTimeout(() => {
  process.stderr.write(`soak: deadline of ${DEADLINE_MS / 1000} s passed, stopping\n`);
  void cleanup().then(() => process.exit(2));
}, DEADLINE_MS);

main().then(
  async (ok) => {
    clearTimeout(deadline);
    await cleanup();
    process.exit(ok ? 0 : 1);
  },
  async (err) => {
    clearTimeout(deadline);
    process.stderr.write(`soak failed: ${err.stack ?? err}\n`);
    await cleanup();
    process.exit(1);
  },
);
