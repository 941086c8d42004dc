// Scopes (issue 20): the memory (RSS) of one stackcast process with 1, 4 and 16 scopes live,
// each holding one published image, and the time of a scope's first PUT (the scope's app
// created, then the publish) against a second PUT to the same scope (the publish alone).
//   npm run build && node bench/scopes-memory.mjs [--size 2000x1500] [--settle 3000]
// Bounded: the run ends within 5 minutes; the service is started here and stopped by its PID.
import { readFileSync } from 'node:fs';
import { logger, option, tempFolders } from './lib/cli.mjs';
import { makeAstroJpeg } from './lib/astro.mjs';
import { freePort, sleep, spawnNode, statusUp, stopChild, waitUntilUp } from './lib/proc.mjs';

const [width, height] = (option('--size') ?? '2000x1500').split('x').map(Number);
const settleMs = Number(option('--settle') ?? 3000);
const log = logger('scopes-memory');
const { tempDir, removeTemps } = tempFolders();
const MAIN = new URL('../dist/main.js', import.meta.url).pathname;

const deadline = setTimeout(() => {
  log('deadline (5 min) passed: stopping');
  process.exit(2);
}, 300_000);

/** Resident memory of `pid`, MiB, from /proc. */
function rssMiB(pid) {
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb / 1024;
}

/** The lowest RSS over `settleMs` (after the publish's buffers are given back). */
async function settledRss(pid) {
  let low = Infinity;
  for (let t = 0; t < settleMs; t += 250) {
    low = Math.min(low, rssMiB(pid));
    await sleep(250);
  }
  return low;
}

async function put(port, path, jpeg) {
  const began = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'PUT', body: jpeg, headers: { 'Content-Type': 'image/jpeg' } });
  await res.arrayBuffer();
  if (res.status !== 200) {
    throw new Error(`PUT ${path}: ${res.status}`);
  }
  return performance.now() - began;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const port = await freePort();
const work = tempDir('stackcast-scopes-bench-');
const child = spawnNode([MAIN], { env: { PORT: String(port), WORK_FOLDER: work, MAX_SCOPES: '16', LOG_FORMAT: 'json' }, inheritEnv: false });
try {
  await waitUntilUp(child, MAIN, () => statusUp(port), 100);
  log(`stackcast up on ${port} (pid ${child.pid}); making a ${width}x${height} JPEG`);
  const jpeg = await makeAstroJpeg(width, height, 1);
  const rows = [];
  const baseline = await settledRss(child.pid);
  rows.push(['1 (main, no image)', baseline]);
  await put(port, '/api/image', jpeg);
  rows.push(['1 (main, one image)', await settledRss(child.pid)]);
  const first = [];
  const second = [];
  for (let n = 2; n <= 16; n++) {
    const id = `scope-${n}`;
    first.push(await put(port, `/s/${id}/api/image`, jpeg));
    second.push(await put(port, `/s/${id}/api/image`, jpeg));
    if (n === 4 || n === 16) {
      rows.push([`${n} (each with an image)`, await settledRss(child.pid)]);
    }
  }
  const listed = (await (await fetch(`http://127.0.0.1:${port}/api/scopes`)).json()).scopes.length;
  console.log(`\nscopes-memory ${new Date().toISOString()} — node ${process.version}, ${width}x${height} JPEG of ${(jpeg.length / 1024).toFixed(0)} KiB, ${listed} scopes listed at the end`);
  console.log('scopes live              RSS MiB   per added scope');
  let previous;
  for (const [label, mib] of rows) {
    const per = previous === undefined || !label.startsWith('4') && !label.startsWith('16') ? '' : `${((mib - previous.mib) / (Number(label.split(' ')[0]) - previous.n)).toFixed(1)} MiB`;
    console.log(`${label.padEnd(24)} ${mib.toFixed(1).padStart(7)}   ${per}`);
    previous = { mib, n: Number(label.split(' ')[0]) };
  }
  console.log(`first PUT to a new scope (app created + publish): median ${median(first).toFixed(0)} ms, max ${Math.max(...first).toFixed(0)} ms (n=${first.length})`);
  console.log(`second PUT to the same scope (publish only):      median ${median(second).toFixed(0)} ms, max ${Math.max(...second).toFixed(0)} ms`);
  console.log(`scope creation alone (median difference):         ${(median(first) - median(second)).toFixed(0)} ms`);
} finally {
  await stopChild(child);
  removeTemps();
  clearTimeout(deadline);
}
