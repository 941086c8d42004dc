#!/usr/bin/env node
// Memory per viewer: the embedded service (bench/servers/stackcast-embedded.mjs) with N idle
// `/ws` viewers, sessions and limits included, against the same service with none; after a
// forced GC, median of R fresh servers. See bench/README.md.
//
//   npm run bench:sessions-memory                       N = 5000, R = 3, dist/
//   options: --n <viewers>  --runs <R>  --dist <dir>  (default dist/)
//            --before <git ref>  also build that commit's src/ and measure it first, same run
//            --publishes <K>     then K in-process publishes: the RSS they add (not per viewer)
//            --snapshot <file>   write heap snapshots with N viewers (<file>) and none (<file>.idle);
//                                that run's RSS is inflated by the snapshot itself (first run of the last build)
import { spawnSync } from 'node:child_process';
import { existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger, option, tempFolders } from './lib/cli.mjs';
import { makeTestJpegs } from './lib/jpeg.mjs';
import { ipcClient, sleep, sourceAddresses, spawnNode, stopChild, waitForMessage } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
const N = Number(option('--n') ?? 5000);
const RUNS = Number(option('--runs') ?? 3);
const TARGET_KB = 8;
const PUBLISHES = Number(option('--publishes') ?? 0);
const log = logger('sessions-memory');
const { tempDir, removeTemps } = tempFolders();
const children = [];

/** `git archive <ref> src` compiled with this checkout's tsc and node_modules. */
function buildRef(ref) {
  const tree = tempDir('stackcast-sessmem-src-');
  const out = join(tree, 'dist');
  log(`building ${ref} into ${out}`);
  const archive = spawnSync('bash', ['-c', `git -C "${ROOT}" archive "${ref}" src scripts tsconfig.json package.json | tar -x -C "${tree}"`], { stdio: 'inherit' });
  if (archive.status !== 0) {
    throw new Error(`git archive ${ref} failed`);
  }
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(tree, 'tsconfig.json'), '--outDir', out], { cwd: tree, stdio: 'inherit' });
  if (tsc.status !== 0) {
    throw new Error(`tsc of ${ref} failed`);
  }
  // The build's own asset step (it writes to dist/ under its cwd).
  const assets = spawnSync(process.execPath, [join(tree, 'scripts/copy-assets.mjs')], { cwd: tree, stdio: 'inherit' });
  if (assets.status !== 0) {
    throw new Error(`copying the assets of ${ref} failed`);
  }
  return out;
}

async function afterGc(call) {
  const { memory: m, clients } = await call('memory');
  return { rss: m.rss / 1024, committed: m.heapTotal / 1024, heap: m.heapUsed / 1024, live: (m.heapUsed + m.external) / 1024, clients };
}

/** One fresh server: memory with no viewer, then with N; KB per viewer. */
async function oneRun({ dist, lg, sources, image, snapshot }) {
  const child = spawnNode(['--expose-gc', join(BENCH, 'servers/stackcast-embedded.mjs'), dist, tempDir('stackcast-sessmem-work-'), image], {
    ipc: true,
    label: 'stackcast-embedded',
    cwd: tempDir('stackcast-sessmem-cwd-'),
  });
  children.push(child);
  try {
    const ready = await waitForMessage(child, 'ready', 30_000, 'stackcast-embedded');
    const call = ipcClient(child, 'stackcast-embedded');
    await sleep(500);
    if (snapshot) {
      await call('snapshot', { file: resolve(`${snapshot}.idle`) });
    }
    const idle = await afterGc(call);
    const group = `g${child.pid}`;
    const r = await lg('connect', { group, url: `ws://127.0.0.1:${ready.port}/ws`, total: N, sources }, 120_000);
    if (r.open < N) {
      throw new Error(`only ${r.open} of ${N} viewers could connect`);
    }
    await sleep(1000);
    const full = await afterGc(call);
    if (full.clients !== N) {
      throw new Error(`the server counts ${full.clients} viewers, ${N} expected`);
    }
    if (snapshot) {
      const { file } = await call('snapshot', { file: resolve(snapshot) });
      log(`heap snapshot with ${N} viewers: ${file}`);
    }
    const per = (k) => (full[k] - idle[k]) / N;
    let publishedRss;
    if (PUBLISHES > 0) {
      // What the image pipeline keeps after publishes (not per viewer): why a slope of RSS
      // over N read between publishes, as bench/run.mjs does, counts more than the viewers.
      for (let k = 0; k < PUBLISHES; k++) {
        await call('publish');
      }
      publishedRss = (await afterGc(call)).rss - full.rss;
    }
    await lg('closeGroup', { group }, 30_000);
    return { heap: per('heap'), live: per('live'), rss: per('rss'), committed: per('committed'), publishedRss };
  } finally {
    await stopChild(child);
  }
}

async function measure(label, dist, ctx) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await oneRun({ dist, ...ctx, snapshot: i === 0 ? ctx.snapshot : undefined });
    log(`${label} run ${i + 1}/${RUNS}: heap ${run.heap.toFixed(2)} KB, heap+external ${run.live.toFixed(2)} KB, RSS ${run.rss.toFixed(2)} KB per viewer (V8 heap committed ${run.committed.toFixed(2)} KB)${run.publishedRss === undefined ? '' : `; RSS +${(run.publishedRss / 1024).toFixed(1)} MB after ${PUBLISHES} publishes`}`);
    runs.push(run);
  }
  return { label, heap: median(runs.map((r) => r.heap)), live: median(runs.map((r) => r.live)), rss: median(runs.map((r) => r.rss)) };
}

async function main() {
  const dist = resolve(ROOT, option('--dist') ?? 'dist');
  if (!existsSync(join(dist, 'index.js'))) {
    throw new Error(`${dist}/index.js is missing: run \`npm run build\``);
  }
  const builds = [];
  const before = option('--before');
  if (before) {
    builds.push({ label: before, dist: buildRef(before) });
  }
  builds.push({ label: 'this build', dist });
  const { images } = await makeTestJpegs();
  const image = join(tempDir('stackcast-sessmem-img-'), 'test.jpg');
  writeFileSync(image, images[0]);
  const sources = await sourceAddresses();
  const lgChild = spawnNode([join(BENCH, 'loadgen.mjs')], { ipc: true, label: 'loadgen', cwd: ROOT });
  children.push(lgChild);
  await waitForMessage(lgChild, 'ready', 15_000, 'loadgen');
  const lg = ipcClient(lgChild, 'loadgen');
  const results = [];
  for (const [i, b] of builds.entries()) {
    results.push(await measure(b.label, b.dist, { lg, sources, image, snapshot: i === builds.length - 1 ? option('--snapshot') : undefined }));
  }
  console.log(`\nmemory per viewer at ${N} idle viewers (after a forced GC, median of ${RUNS} fresh servers; target ≤ ${TARGET_KB} KB):`);
  console.log(`${'build'.padEnd(24)} ${'V8 heap'.padStart(9)} ${'heap+ext'.padStart(9)} ${'RSS'.padStart(9)}`);
  for (const r of results) {
    console.log(`${r.label.padEnd(24)} ${r.heap.toFixed(2).padStart(6)} KB ${r.live.toFixed(2).padStart(6)} KB ${r.rss.toFixed(2).padStart(6)} KB  ${r.rss <= TARGET_KB ? 'met' : 'NOT met'}`);
  }
}

main()
  .catch((err) => {
    process.exitCode = 1;
    console.error(err);
  })
  .finally(async () => {
    for (const c of children) {
      await stopChild(c);
    }
    removeTemps();
  });
