#!/usr/bin/env node
// What a phone feels during publishes (issue 23, target ≤ 50 ms): the built service
// (dist/main.js) takes back-to-back PUTs of a 16-bit 12 MP FITS (or a linear 16-bit TIFF)
// while one client polls GET /status and one ws client pings, each every 20 ms, one at a
// time; prints the round trips (p50, p99, max) and the PUT → 200 time, medians over runs.
//
//   node bench/responsiveness.mjs [--dist <dir>] [--publishes 20] [--runs 3] [--tiff | --jpeg61] [--pi]
//   --dist    the built output to test (default dist/: `npm run build` first)
//   --jpeg61  a 61 MP JPEG (9576×6388, q90, ~20 MB) kept at full size (MAX_IMAGE_SIZE=65500)
//   --pi    the service pinned to one core (taskset -c 0), UV_THREADPOOL_SIZE=2, SHARP_CONCURRENCY=1
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { encodeFits } from '../test/fixtures/fits-writer.mjs';
import { encodeTiff } from '../test/fixtures/tiff-writer.mjs';
import { flag, logger, option, tempFolders } from './lib/cli.mjs';
import { BENCH_LIMITS_ENV, freePort, nowMs, PI_PROFILE, sleep, spawnNode, statusUp, stopChild, waitUntilUp } from './lib/proc.mjs';
import { publish } from './lib/field-phones.mjs';
import { makeStackJpeg } from './lib/jpeg.mjs';
import { linearSky } from './lib/astro.mjs';
import { median, quantile } from './lib/stats.mjs';

const DIST = resolve(option('--dist') ?? 'dist');
const PUBLISHES = Number(option('--publishes') ?? 20);
const RUNS = Number(option('--runs') ?? 3);
const TIFF = flag('--tiff');
const JPEG61 = flag('--jpeg61');
const PI = flag('--pi');
const EVERY_MS = 20;
const W = 4000;
const H = 3000;
const log = logger('responsiveness');
const { tempDir, removeTemps } = tempFolders();

const input = JPEG61
  ? { what: '9576×6388 JPEG', type: 'image/jpeg', bytes: await makeStackJpeg(9576, 6388, 1) }
  : TIFF
    ? { what: `${W}×${H} linear 16-bit RGB TIFF`, type: 'image/tiff', bytes: encodeTiff({ width: W, height: H, channels: 3, bits: 16, data: linearSky(W, H, 3) }) }
    : { what: `${W}×${H} 16-bit grey FITS`, type: 'image/fits', bytes: encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(W, H, 1) }) };

// node:http as a stacker's curl: fetch's body streaming costs this process (where the probes run) ~100 ms of a 20 MB PUT.
const put = (port) => publish(port, input.bytes, '/api/image', input.type);

/** Calls `probe` again and again, `EVERY_MS` apart, until `done()`: each call's round trip in ms. */
async function roundTrips(probe, done) {
  const times = [];
  while (!done()) {
    const began = nowMs();
    await probe();
    times.push(nowMs() - began);
    await sleep(EVERY_MS);
  }
  return times;
}

async function oneRun() {
  const port = await freePort();
  const child = spawnNode([join(DIST, 'main.js')], {
    label: 'stackcast',
    cwd: tempDir('stackcast-resp-cwd-'),
    env: {
      PORT: String(port),
      WORK_FOLDER: tempDir('stackcast-resp-work-'),
      MAX_IMAGE_BYTES: String(256 * 1024 * 1024),
      ...(JPEG61 ? { MAX_IMAGE_SIZE: '65500' } : {}),
      ...BENCH_LIMITS_ENV,
      ...(PI ? PI_PROFILE.env : {}),
    },
    inheritEnv: false,
    prefix: PI ? PI_PROFILE.prefix : [],
  });
  try {
    // A loaded or one-core machine may take longer than 30 s to start.
    await waitUntilUp(child, join(DIST, 'main.js'), () => statusUp(port), 50, 120_000);
    // Warm-up: the worker's start and libvips' first call are not what is measured.
    await put(port);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
    const ping = () => new Promise((ok) => (ws.once('pong', ok), ws.ping()));
    const status = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/status`);
      await res.arrayBuffer();
    };
    let finished = false;
    const publishTimes = [];
    const publishing = (async () => {
      try {
        for (let i = 0; i < PUBLISHES; i++) {
          const began = nowMs();
          await put(port);
          publishTimes.push(nowMs() - began);
        }
      } finally {
        finished = true;
      }
    })();
    const [statusTimes, pingTimes] = await Promise.all([roundTrips(status, () => finished), roundTrips(ping, () => finished), publishing]);
    ws.close();
    const summary = (times) => {
      const sorted = [...times].sort((a, b) => a - b);
      return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1), n: sorted.length };
    };
    return { status: summary(statusTimes), ping: summary(pingTimes), publish: median(publishTimes) };
  } finally {
    await stopChild(child);
  }
}

log(`${input.what}, ${PUBLISHES} back-to-back publishes, /status and ws ping every ${EVERY_MS} ms; ${DIST}${PI ? '; --pi: taskset -c 0, UV_THREADPOOL_SIZE=2, SHARP_CONCURRENCY=1' : ''}`);
const runs = [];
try {
  for (let run = 0; run < RUNS; run++) {
    const r = await oneRun();
    log(
      `run ${run + 1}: /status p50 ${r.status.p50.toFixed(1)} p99 ${r.status.p99.toFixed(1)} max ${r.status.max.toFixed(1)} ms (${r.status.n}); ` +
        `ws ping p50 ${r.ping.p50.toFixed(1)} p99 ${r.ping.p99.toFixed(1)} max ${r.ping.max.toFixed(1)} ms (${r.ping.n}); PUT → 200 median ${r.publish.toFixed(0)} ms`,
    );
    runs.push(r);
  }
} finally {
  removeTemps();
}
const m = (pick) => median(runs.map(pick)).toFixed(1);
console.log(
  `${input.what} ×${PUBLISHES}${PI ? ' (--pi)' : ''}, median of ${RUNS} runs: /status p50 ${m((r) => r.status.p50)} p99 ${m((r) => r.status.p99)} max ${m((r) => r.status.max)} ms; ` +
    `ws ping p50 ${m((r) => r.ping.p50)} p99 ${m((r) => r.ping.p99)} max ${m((r) => r.ping.max)} ms; PUT → 200 ${m((r) => r.publish)} ms (${DIST})`,
);
