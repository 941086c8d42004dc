#!/usr/bin/env node
// The event loop during a publish's conversion (issue 23, "nothing heavy on the event loop"):
// converts a 4000×3000 16-bit grey FITS and a linear 16-bit RGB TIFF with the built
// ImageConverter while a 10 ms interval ticks on the main thread, and prints the longest
// gap between ticks and perf_hooks' event-loop delay (max, p99).
//
//   node bench/event-loop.mjs [--dist <dir>] [--runs 3] [--pi]
//   --dist  the built output to test (default dist/); a build without PixelWorkers runs as before
//   --pi    pinned to one core (taskset -c 0), UV_THREADPOOL_SIZE=2, sharp's concurrency 1
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { encodeFits } from '../test/fixtures/fits-writer.mjs';
import { encodeTiff } from '../test/fixtures/tiff-writer.mjs';
import { flag, option } from './lib/cli.mjs';
import { median } from './lib/stats.mjs';

// --pi: this script again under taskset, with libuv's pool sized before it starts.
if (flag('--pi') && process.env.STACKCAST_BENCH_PI !== '1') {
  const env = { ...process.env, STACKCAST_BENCH_PI: '1', UV_THREADPOOL_SIZE: '2', SHARP_CONCURRENCY: '1' };
  const { status } = spawnSync('taskset', ['-c', '0', process.execPath, ...process.argv.slice(1)], { env, stdio: 'inherit' });
  process.exit(status ?? 1);
}
const PI = process.env.STACKCAST_BENCH_PI === '1';
const DIST = resolve(option('--dist') ?? 'dist');
const RUNS = Number(option('--runs') ?? 3);
const W = 4000;
const H = 3000;
const module = (path) => import(pathToFileURL(resolve(DIST, path)).href);

/** A linear sky (3 % of full scale) with noise and a few stars: what the auto-stretch is for. */
function linearSky(channels, full) {
  const data = new Uint16Array(W * H * channels);
  let seed = 3;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 16807) % 2147483647;
    const u = seed / 2147483647;
    data[i] = Math.round((u < 0.002 ? 0.7 : 0.03 + (u - 0.5) * 0.01) * full);
  }
  return data;
}

const { resolveImageServerOptions } = await module('config/image-server-options.js');
const { ImageConverter } = await module('modules/image-notifier/image-converter.service.js');
const workersPath = 'modules/image-notifier/pixel-workers.service.js';
const workers = existsSync(resolve(DIST, workersPath)) ? new (await module(workersPath)).PixelWorkers() : undefined;
const converter = new ImageConverter(resolveImageServerOptions({}), workers);
if (PI) {
  // Set here, not through the option: a build from before SHARP_CONCURRENCY gets it too.
  sharp.concurrency(1);
}

const inputs = {
  [`${W}×${H} 16-bit grey FITS`]: encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535) }),
  [`${W}×${H} linear 16-bit RGB TIFF`]: encodeTiff({ width: W, height: H, channels: 3, bits: 16, data: linearSky(3, 65535) }),
};

console.log(
  `event loop during ImageConverter.toPublishable, ${DIST} (${workers ? 'pixel worker' : 'no worker: main thread'})${PI ? ', --pi (taskset -c 0, UV_THREADPOOL_SIZE=2, SHARP_CONCURRENCY=1)' : ''}, median of ${RUNS} runs`,
);
// Warm-up: the worker's start and sharp's first call are not what is measured.
await converter.toPublishable(Object.values(inputs)[0]);
for (const [what, input] of Object.entries(inputs)) {
  const figures = [];
  for (let run = 0; run < RUNS; run++) {
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    let last = performance.now();
    let longestGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 10);
    histogram.enable();
    const started = performance.now();
    const out = await converter.toPublishable(input);
    const total = performance.now() - started;
    histogram.disable();
    clearInterval(timer);
    longestGap = Math.max(longestGap, performance.now() - last);
    figures.push({ total, longestGap, max: histogram.max / 1e6, p99: histogram.percentile(99) / 1e6, stretched: out.stretched });
  }
  const m = (key) => median(figures.map((f) => f[key])).toFixed(0);
  console.log(
    `${what}: conversion ${m('total')} ms; longest 10 ms-timer gap ${m('longestGap')} ms; event-loop delay max ${m('max')} ms, p99 ${m('p99')} ms (stretched: ${figures[0].stretched})`,
  );
}
await workers?.onApplicationShutdown();
