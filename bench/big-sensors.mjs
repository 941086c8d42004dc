#!/usr/bin/env node
// Big sensors (issue 23): PUT -> new_image at the last of N viewers for a 12 MP and a 61 MP
// JPEG and a 16-bit 12 MP FITS, a phone zoomed to 1:1 right after new_image (61 MP), and peak RSS, for a baseline
// build (a git ref, main by default) and this build, interleaved in one run.
//
//   node bench/big-sensors.mjs [--quick] [--pi] [--baseline <git ref>] [--dist <dir>] [--viewers N] [--rounds K] [--only <size>] [--malloc-arena-max N]
//   --only  one size ('12 MP', '61 MP' or '12 MP FITS'): more rounds of it in the same time
//   --pi  both services pinned to one core (taskset -c 0), UV_THREADPOOL_SIZE=2, SHARP_CONCURRENCY=1:
//         the targets are then twice the 2-core ones
//   --malloc-arena-max  glibc's malloc arenas for both services: 2 by default, as the container
//         sets it; 0 for glibc's default (eight per core)
// The service keeps images at full resolution here (MAX_IMAGE_SIZE=65500): the case of
// a phone zooming into a 61 MP stack. Run by `npm run bench` after its own phases.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import WebSocket from 'ws';
import { buildBaseline } from './lib/baseline.mjs';
import { flag, logger, option, tempFolders } from './lib/cli.mjs';
import { BENCH_LIMITS_ENV, freePort, mallocArenaEnv, nowMs, PI_PROFILE, sleep, sourceAddresses, spawnNode, statusUp, stopChild } from './lib/proc.mjs';
import { publish } from './lib/field-phones.mjs';
import { makeStackJpeg } from './lib/jpeg.mjs';
import { linearSky } from './lib/astro.mjs';
import { encodeFits } from '../test/fixtures/fits-writer.mjs';
import { median } from './lib/stats.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
const QUICK = flag('--quick');
const PI = flag('--pi');
/** The 2-core targets; the one-core profile's are twice these (issue 23). */
const SLACK = PI ? 2 : 1;
const VIEWERS = Number(option('--viewers') ?? (QUICK ? 200 : 1000));
const ROUNDS = Number(option('--rounds') ?? (QUICK ? 2 : 5));
const ONLY = option('--only');
const ARENAS = mallocArenaEnv(flag('--malloc-arena-max'), option('--malloc-arena-max'));
const SIZES = [
  { label: '12 MP', width: 4240, height: 2832, target: 250, type: 'image/jpeg' },
  { label: '61 MP', width: 9576, height: 6388, target: 400, type: 'image/jpeg' },
  // A linear 16-bit grey FITS, converted (stretched, encoded) before its pyramid is cut.
  { label: '12 MP FITS', width: 4000, height: 3000, target: 400, type: 'image/fits' },
];
/** A phone in portrait (1170×2532 device pixels) at 1:1 in the middle of the image. */
const PHONE = { width: 1170, height: 2532 };
const TILE = 510;
const log = logger('big-sensors');
const { tempDir, removeTemps } = tempFolders();
const children = [];

async function startServer(label, dist) {
  const port = await freePort();
  const work = tempDir('stackcast-big-');
  const child = spawnNode([join(dist, 'main.js')], {
    label,
    cwd: tempDir('stackcast-big-cwd-'),
    env: { PORT: String(port), WORK_FOLDER: work, MAX_IMAGE_SIZE: '65500', MAX_IMAGE_BYTES: String(512 * 1024 * 1024), ...BENCH_LIMITS_ENV, ...ARENAS, ...(PI ? PI_PROFILE.env : {}) },
    inheritEnv: false,
    prefix: PI ? PI_PROFILE.prefix : [],
  });
  children.push(child);
  // Not waitUntilUp's 30 s: a loaded machine takes longer to start two services.
  const deadline = Date.now() + 180_000;
  while (!(await statusUp(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${label} did not answer /status:\n${child.output()}`);
    }
    await sleep(100);
  }
  return { label, port, work, child };
}

/** N viewers on /ws; `arrivals(version)` resolves with each one's receipt time of that version's new_image. */
async function connectViewers(port, n, sources) {
  const got = new Map(); // version -> times
  const waiters = [];
  const sockets = [];
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, j) =>
        new Promise((resolveOpen, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { localAddress: sources[(i + j) % sources.length], perMessageDeflate: false });
          ws.on('message', (data) => {
            const msg = JSON.parse(String(data));
            if (msg.type === 'new_image' && typeof msg.version === 'number') {
              const times = got.get(msg.version) ?? [];
              times.push(nowMs());
              got.set(msg.version, times);
              waiters.forEach((w) => w());
            }
          });
          ws.once('open', resolveOpen);
          ws.once('error', reject);
          sockets.push(ws);
        }),
      ),
    );
  }
  return {
    sockets,
    async arrivals(version, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while ((got.get(version)?.length ?? 0) < n) {
        if (Date.now() > deadline) {
          throw new Error(`only ${got.get(version)?.length ?? 0} of ${n} viewers got version ${version}`);
        }
        await new Promise((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
        waiters.length = 0;
      }
      return got.get(version);
    },
    close: () => sockets.forEach((ws) => ws.terminate()),
  };
}

async function put(port, jpeg) {
  const res = await fetch(`http://127.0.0.1:${port}/api/image`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: jpeg });
  const text = await res.text();
  if (res.status !== 200) {
    throw new Error(`PUT ${res.status}: ${text}`);
  }
}

/** Every tile a phone at 1:1 in the middle of the image needs, fetched 6 at a time (a browser's limit per host). */
async function phoneAtOneToOne(port, version, { width, height }) {
  let top = 0;
  while (2 ** top < Math.max(width, height)) {
    top++;
  }
  const x0 = Math.max(0, Math.floor((width - PHONE.width) / 2));
  const y0 = Math.max(0, Math.floor((height - PHONE.height) / 2));
  const names = [];
  for (let row = Math.floor(y0 / TILE); row <= Math.floor((y0 + PHONE.height - 1) / TILE); row++) {
    for (let col = Math.floor(x0 / TILE); col <= Math.floor((x0 + PHONE.width - 1) / TILE); col++) {
      names.push(`${top}/${col}_${row}.jpeg`);
    }
  }
  const queue = [...names];
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let name = queue.shift(); name; name = queue.shift()) {
        const res = await fetch(`http://127.0.0.1:${port}/v/${version}/image_files/${name}`);
        const body = Buffer.from(await res.arrayBuffer());
        const meta = res.status === 200 ? await sharp(body).metadata() : undefined;
        if (!meta || meta.format !== 'jpeg' || meta.width < TILE || meta.height < TILE) {
          throw new Error(`tile ${name} of version ${version}: ${res.status}`);
        }
      }
    }),
  );
  return names.length;
}

/** ms until the version's deep levels are all on disk (0 for a build that cuts them all before new_image). */
async function deepDone(work, version, since) {
  const marker = join(work, 'v', String(version), 'deep-pending.json');
  while (existsSync(marker)) {
    if (nowMs() - since > 60_000) {
      throw new Error(`version ${version}: deep levels not done after 60 s`);
    }
    await sleep(20);
  }
  return nowMs() - since;
}

function peakRssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)[1]) / 1024;
}

async function main() {
  const ref = option('--baseline') ?? 'main';
  const baseline = buildBaseline(ref, log);
  const dist = resolve(ROOT, option('--dist') ?? 'dist');
  log(`images: ${SIZES.map((s) => `${s.width}×${s.height}`).join(', ')}`);
  const images = await Promise.all(
    SIZES.map(async (s) =>
      s.type === 'image/fits'
        ? [3, 11].map((seed) => encodeFits({ width: s.width, height: s.height, channels: 1, bitpix: 16, data: linearSky(s.width, s.height, 1, seed) }))
        : [await makeStackJpeg(s.width, s.height, 1), await makeStackJpeg(s.width, s.height, 7)],
    ),
  );
  const sources = await sourceAddresses();
  const targets = [
    { name: `${ref} ${baseline.sha.slice(0, 7)}`, server: await startServer('baseline', baseline.dist) },
    { name: 'this build', server: await startServer('branch', dist) },
  ];
  for (const t of targets) {
    t.viewers = await connectViewers(t.server.port, VIEWERS, sources);
    t.version = 0;
    t.results = SIZES.map(() => ({ newImage: [], phone: [], deep: [] }));
  }
  log(`${VIEWERS} viewers on each of ${targets.length} servers; ${ROUNDS} rounds`);
  for (let s = 0; s < SIZES.length; s++) {
    if (ONLY !== undefined && SIZES[s].label !== ONLY) {
      continue;
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const jpeg = images[s][round % 2];
        const version = ++t.version;
        const t0 = nowMs();
        await publish(t.server.port, jpeg, '/api/image', SIZES[s].type);
        const times = await t.viewers.arrivals(version);
        const last = Math.max(...times);
        const r = t.results[s];
        r.newImage.push(last - t0);
        if (SIZES[s].label === '61 MP') {
          await phoneAtOneToOne(t.server.port, version, SIZES[s]);
          r.phone.push(nowMs() - last);
        }
        r.deep.push(await deepDone(t.server.work, version, last));
        await sleep(200);
      }
    }
    for (const t of targets) {
      t.results[s].rss = peakRssMb(t.server.child.pid);
    }
  }
  const fmt = (v) => (Number.isFinite(v) ? String(Math.round(v)) : '-');
  const lines = [
    `big sensors: PUT -> new_image at the last of ${VIEWERS} viewers (upload over loopback included), medians of ${ROUNDS}; MAX_IMAGE_SIZE=65500; MALLOC_ARENA_MAX=${ARENAS.MALLOC_ARENA_MAX ?? "glibc's default"}${PI ? '; --pi: one core, UV_THREADPOOL_SIZE=2, SHARP_CONCURRENCY=1' : ''}`,
    `${'build'.padEnd(18)} ${'12 MP ms'.padStart(9)} ${'61 MP ms'.padStart(9)} ${'12/61'.padStart(6)} ${'FITS 12 MP ms'.padStart(14)} ${'phone 1:1 61 MP ms'.padStart(19)} ${'deep done 61 MP ms'.padStart(19)} ${'peak RSS MB'.padStart(12)}`,
  ];
  for (const t of targets) {
    const [a, b, fits] = t.results.map((r) => median(r.newImage));
    lines.push(
      `${t.name.padEnd(18)} ${fmt(a).padStart(9)} ${fmt(b).padStart(9)} ${(a / b).toFixed(2).padStart(6)} ${fmt(fits).padStart(14)} ${fmt(median(t.results[1].phone)).padStart(19)} ${fmt(median(t.results[1].deep)).padStart(19)} ${fmt(t.results[1].rss).padStart(12)}`,
    );
  }
  const mine = targets[1].results;
  const verdict = (ok, text) => (text.includes(': - ') ? `  [not run] ${text}` : `  ${ok ? '[met]    ' : '[NOT met]'} ${text}`);
  lines.push(
    'targets (this build):',
    verdict(median(mine[0].newImage) <= 250 * SLACK, `12 MP PUT -> new_image ≤ ${250 * SLACK} ms: ${fmt(median(mine[0].newImage))} ms`),
    verdict(median(mine[2].newImage) <= 400 * SLACK, `16-bit 12 MP FITS PUT -> new_image ≤ ${400 * SLACK} ms: ${fmt(median(mine[2].newImage))} ms`),
    verdict(median(mine[1].newImage) <= 400 * SLACK, `61 MP PUT -> new_image ≤ ${400 * SLACK} ms: ${fmt(median(mine[1].newImage))} ms`),
    verdict(median(mine[1].phone) <= 1000 * SLACK, `61 MP phone at 1:1 has its deep tiles ≤ ${SLACK} s after new_image: ${fmt(median(mine[1].phone))} ms`),
    verdict(mine[1].rss < 600, `peak RSS during 61 MP publishes < 600 MB: ${fmt(mine[1].rss)} MB`),
  );
  lines.push('spread of PUT -> new_image (first quartile, median, third quartile; ms):');
  for (const t of targets) {
    const spread = SIZES.map((size, i) => {
      const sorted = [...t.results[i].newImage].sort((x, y) => x - y);
      return sorted.length === 0 ? undefined : `${size.label} ${[0.25, 0.5, 0.75].map((q) => fmt(sorted[Math.floor(q * sorted.length)])).join(' / ')}`;
    });
    lines.push(`  ${t.name}: ${spread.filter(Boolean).join(', ')}`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
  for (const t of targets) {
    log(`${t.name}: raw ${JSON.stringify(t.results)}`);
    t.viewers.close();
  }
}

async function cleanup() {
  for (const child of children.splice(0)) {
    await stopChild(child);
  }
  removeTemps();
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err) => {
    process.stderr.write(`big-sensors bench failed: ${err.stack ?? err}\n`);
    await cleanup();
    process.exit(1);
  },
);
