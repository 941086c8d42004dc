#!/usr/bin/env node
// Decompression bombs against the real service, measured (figures, not assertions):
//
//   npm run build && node bench/bombs.mjs [--main path/to/dist/main.js]
//
// Each bomb goes to a fresh `node dist/main.js` (so its peak RSS is that bomb's alone), by
// PUT /api/image or dropped into the watched folder. Printed per bomb: the answer, the
// idle RSS, the peak RSS (VmHWM), the RSS after, the wall time, and the longest /status
// answer while it was handled (polled every 50 ms from here: the event-loop stall).
// `--main` runs another build (e.g. one made from an earlier commit) for a before/after.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { floatTiffBomb, png16Bomb } from '../test/fixtures/bombs.mjs';
import { option, tempFolders, logger } from './lib/cli.mjs';
import { freePort, sleep, spawnNode, statusUp, stopChild, waitUntilUp } from './lib/proc.mjs';

const log = logger('bombs');
const MAIN = resolve(option('--main') ?? fileURLToPath(new URL('../dist/main.js', import.meta.url)));
const { tempDir, removeTemps } = tempFolders();

/** VmRSS and VmHWM of `pid`, in MB. */
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** Polls /status every 50 ms until `done` settles; resolves with the longest answer time in ms. */
async function longestStatus(port, done) {
  let finished = false;
  void done.finally(() => (finished = true));
  let longest = 0;
  while (!finished) {
    const t0 = performance.now();
    await fetch(`http://127.0.0.1:${port}/status`).then((r) => r.arrayBuffer(), () => undefined);
    longest = Math.max(longest, performance.now() - t0);
    await sleep(50);
  }
  return longest;
}

async function run({ name, bytes, type, via, env = {} }) {
  const port = await freePort();
  const work = tempDir('stackcast-bombs-');
  const watch = join(work, 'watch');
  mkdirSync(watch);
  const child = spawnNode([MAIN], {
    inheritEnv: false,
    cwd: work,
    env: { PORT: String(port), WORK_FOLDER: join(work, 'web'), ...(via === 'watch' ? { WATCH_PATH: watch, WATCH_SETTLE_MS: '200' } : {}), ...env },
  });
  try {
    await waitUntilUp(child, MAIN, () => statusUp(port), 100);
    await sleep(500);
    const idle = memory(child.pid);
    const t0 = performance.now();
    let handled;
    if (via === 'put') {
      handled = fetch(`http://127.0.0.1:${port}/api/image`, { method: 'PUT', headers: { 'Content-Type': type }, body: new Uint8Array(bytes) }).then(async (r) => `${r.status} ${(await r.text()).slice(0, 90)}`);
    } else {
      writeFileSync(join(watch, `bomb.${type.split('/')[1]}`), bytes);
      handled = (async () => {
        for (;;) {
          // A stalled service may reset the connection: asked again.
          const w = await fetch(`http://127.0.0.1:${port}/status`).then(async (r) => (await r.json()).watch, () => undefined);
          if (w !== undefined && w.imagesPublished + w.filesSkipped > 0) {
            return w.filesSkipped > 0 ? `skipped ${JSON.stringify(w.skippedBy)}` : 'published';
          }
          await sleep(100);
        }
      })();
    }
    const [answer, stall] = await Promise.all([handled, longestStatus(port, handled)]);
    const seconds = (performance.now() - t0) / 1000;
    const alive = child.exitCode === null && (await statusUp(port));
    const after = memory(child.pid);
    return { name, size: `${(bytes.length / 1024).toFixed(0)} KB`, answer, idleMb: idle.rss, peakMb: after.peak, afterMb: after.rss, seconds, stallMs: stall, alive };
  } finally {
    await stopChild(child);
  }
}

log(`making the bombs; service: ${MAIN}`);
const tiff = floatTiffBomb({ side: 16383 });
const tiffRotated = floatTiffBomb({ side: 12000, orientation: 6 });
const png12k = await png16Bomb({ width: 12000, height: 12000 });
const png16k = await png16Bomb({ width: 16383, height: 16383 });
const HIGH = { MAX_INPUT_PIXELS: '300000000' };
const cases = [
  { name: 'float TIFF 16383², PUT', bytes: tiff, type: 'image/tiff', via: 'put' },
  { name: 'float TIFF 16383², watched folder', bytes: tiff, type: 'image/tiff', via: 'watch' },
  { name: '16-bit PNG 16383², PUT', bytes: png16k, type: 'image/png', via: 'put' },
  { name: '16-bit PNG 12000², PUT', bytes: png12k, type: 'image/png', via: 'put' },
  { name: 'float TIFF 12000² rotated (EXIF 6), PUT', bytes: tiffRotated, type: 'image/tiff', via: 'put' },
  { name: 'float TIFF 16383², PUT, MAX_INPUT_PIXELS=3e8', bytes: tiff, type: 'image/tiff', via: 'put', env: HIGH },
  { name: '16-bit PNG 16383², PUT, MAX_INPUT_PIXELS=3e8', bytes: png16k, type: 'image/png', via: 'put', env: HIGH },
];
const fmt = (n) => n.toFixed(0).padStart(6);
// Each row as soon as it is measured.
console.log(`${'bomb'.padEnd(48)} ${'file'.padStart(7)} ${'idle MB'.padStart(8)} ${'peak MB'.padStart(8)} ${'after MB'.padStart(8)} ${'s'.padStart(6)} ${'stall ms'.padStart(8)}  alive  answer`);
try {
  for (const c of cases) {
    log(c.name);
    const r = await run(c).catch((err) => ({ name: c.name, failed: err.message.split('\n')[0] }));
    if (r.failed !== undefined) {
      console.log(`${r.name.padEnd(48)} not measured: ${r.failed}`);
      continue;
    }
    console.log(`${r.name.padEnd(48)} ${r.size.padStart(7)} ${fmt(r.idleMb).padStart(8)} ${fmt(r.peakMb).padStart(8)} ${fmt(r.afterMb).padStart(8)} ${r.seconds.toFixed(1).padStart(6)} ${fmt(r.stallMs).padStart(8)}  ${r.alive ? 'yes' : 'NO '}    ${r.answer}`);
  }
} finally {
  removeTemps();
}
console.log(`\n${new Date().toISOString()}, Node ${process.version}, one run each, ${MAIN}`);
