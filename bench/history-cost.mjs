// What the night's history costs a publish: PUT -> 200 of 12 MP JPEGs with HISTORY_BUDGET_MB=0
// and with the default 512, alternating, against the built service (dist/main.js, PORT=0).
// Usage: npm run build && node bench/history-cost.mjs [--publishes 12]
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { makeAstroJpeg } from './lib/astro.mjs';
import { startOnFreePort } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const publishes = Number(process.argv[process.argv.indexOf('--publishes') + 1]) || 12;

function start(budget) {
  return startOnFreePort(MAIN, { HISTORY_BUDGET_MB: budget }, 'stackcast-history-cost');
}

const images = [];
for (let i = 0; i < publishes; i++) {
  images.push(await makeAstroJpeg(4000, 3000, i + 1));
}
const services = { off: await start('0'), on: await start('512') };
const times = { off: [], on: [] };
try {
  for (let i = 0; i < publishes; i++) {
    for (const mode of i % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const began = performance.now();
      const res = await fetch(`http://127.0.0.1:${services[mode].port}/api/image?stackSize=${i + 1}`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: images[i] });
      await res.arrayBuffer();
      if (res.status !== 200) {
        throw new Error(`publish ${i + 1} (${mode}): ${res.status}`);
      }
      times[mode].push(performance.now() - began);
    }
  }
} finally {
  for (const { child, work } of Object.values(services)) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(work, { recursive: true, force: true });
  }
}
const off = median(times.off.slice(1));
const on = median(times.on.slice(1));
console.log(`${new Date().toISOString().slice(0, 10)}, ${publishes} publishes of a 4000x3000 JPEG (${(images[0].length / 1e6).toFixed(1)} MB), first left out`);
console.log(`PUT -> 200 median: history off ${off.toFixed(0)} ms, on ${on.toFixed(0)} ms: +${(on - off).toFixed(0)} ms (${(on / off).toFixed(2)}x)`);
