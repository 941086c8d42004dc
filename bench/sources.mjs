#!/usr/bin/env node
// Image sources, measured (figures, not assertions): run `npm run build` first.
//
//   node bench/sources.mjs [runs]
//
// 1. Folder watch: time from the last byte of a file written by a stacker (a child
//    process, stacker-sim.mjs, writing in chunks) to a ws client's new_image, with the
//    default settle time (500 ms) and a short one (100 ms), for a 1280x960 JPEG (passed
//    through) and a 16-bit 4000x3000 TIFF (converted).
// 2. Conversion: a 16-bit 4000x3000 RGB TIFF to the published JPEG (ImageConverter alone,
//    and the whole ImageNotifier.publish with its atomic writes).
// Only 127.0.0.1 traffic; temp folders removed at the end.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Test } from '@nestjs/testing';
import sharp from 'sharp';
import { WebSocket } from 'ws';
import { encodeTiff } from '../test/fixtures/tiff-writer.mjs';

const dist = new URL('../dist/', import.meta.url);
const { ImageServerModule, ImageNotifier, ViewerWsAdapter, resolveImageServerOptions } = await import(new URL('index.js', dist).href);
const { ImageConverter } = await import(new URL('modules/image-notifier/image-converter.service.js', dist).href);
const { ServerLifecycle } = await import(new URL('modules/lifecycle/server-lifecycle.service.js', dist).href);

const RUNS = Number(process.argv[2] ?? 7);
const SIMULATOR = fileURLToPath(new URL('../test/fixtures/stacker-sim.mjs', import.meta.url));

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (values) => `median ${median(values).toFixed(0)} ms (min ${Math.min(...values).toFixed(0)}, max ${Math.max(...values).toFixed(0)}, n=${values.length})`;

function tiff16(width, height, seed) {
  const data = new Uint16Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    // A sky-like frame: dark background, a gradient, grain.
    data[i] = 2000 + ((i / 3) % width) * 4 + (s >>> 20);
  }
  return encodeTiff({ width, height, channels: 3, bits: 16, data });
}

async function jpeg(width, height, seed) {
  const raw = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    raw[i] = 20 + ((i / 3) % width) / 16 + (s >>> 28);
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

async function startServer(options) {
  const moduleRef = await Test.createTestingModule({
    imports: [ImageServerModule.forRoot({ port: 0, host: '127.0.0.1', printQrCode: false, disconnectGraceMs: 50, ...options })],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: ['error'], forceCloseConnections: true });
  app.useWebSocketAdapter(new ViewerWsAdapter(app));
  await app.init();
  return { app, port: app.get(ServerLifecycle).port };
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const arrivals = [];
    let waiter;
    socket.on('message', (data) => {
      if (JSON.parse(data.toString()).type === 'new_image') {
        arrivals.push(Date.now());
        waiter?.();
      }
    });
    socket.once('open', () =>
      resolve({
        socket,
        nextArrival: (count, timeoutMs = 30_000) =>
          new Promise((res, rej) => {
            const check = () => {
              if (arrivals.length >= count) {
                clearTimeout(timer);
                waiter = undefined;
                res(arrivals[count - 1]);
              }
            };
            const timer = setTimeout(() => rej(new Error(`no new_image #${count} within ${timeoutMs} ms`)), timeoutMs);
            waiter = check;
            check();
          }),
      }),
    );
    socket.once('error', reject);
  });
}

/** Runs the stepping simulator over `files`; yields the epoch ms of each image's last byte. */
function simulator(target, files) {
  const child = spawn(process.execPath, [SIMULATOR, 'chunks', target, ...files], {
    env: { PATH: process.env.PATH ?? '', CHUNK_BYTES: '262144', PAUSE_MS: '5', STEP: '1' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lastBytes = [];
  let waiter;
  let partial = '';
  child.stdout.on('data', (d) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const line of lines) {
      if (line.startsWith('wrote ')) {
        lastBytes.push(Number(line.split(' ')[3]));
        waiter?.();
      }
    }
  });
  return {
    wrote: (index) =>
      new Promise((resolve) => {
        const check = () => lastBytes.length >= index && resolve(lastBytes[index - 1]);
        waiter = check;
        check();
      }),
    next: () => child.stdin.write('next\n'),
    exited: new Promise((resolve) => child.once('exit', resolve)),
  };
}

async function watchLatency(label, settleMs, makeImage, extension) {
  const root = await mkdtemp(join(tmpdir(), 'stackcast-bench-'));
  const sources = join(root, 'sources');
  const watched = join(root, 'watched');
  await Promise.all([sources, watched].map((d) => mkdir(d, { recursive: true })));
  const files = [];
  for (let i = 0; i < RUNS; i++) {
    const path = join(sources, `frame${i}.${extension}`);
    await writeFile(path, await makeImage(i));
    files.push(path);
  }
  const { app, port } = await startServer({ workFolder: join(root, 'work'), watchPath: watched, watchSettleMs: settleMs });
  const client = await connect(port);
  const sim = simulator(watched, files);
  const latencies = [];
  for (let i = 1; i <= RUNS; i++) {
    const lastByte = await sim.wrote(i);
    const arrival = await client.nextArrival(i);
    latencies.push(arrival - lastByte);
    sim.next();
  }
  await sim.exited;
  client.socket.close();
  await app.close();
  await rm(root, { recursive: true, force: true });
  process.stdout.write(`watch, ${label}, settle ${settleMs} ms: last byte -> new_image ${fmt(latencies)}\n`);
}

async function conversion() {
  const tiff = tiff16(4000, 3000, 7);
  const converter = new ImageConverter(resolveImageServerOptions({}));
  const times = [];
  let out;
  for (let i = 0; i < RUNS; i++) {
    const began = performance.now();
    out = await converter.toPublishable(tiff);
    times.push(performance.now() - began);
  }
  process.stdout.write(
    `convert a 16-bit 4000x3000 RGB TIFF (${(tiff.length / 1e6).toFixed(1)} MB) to a ${out.width}x${out.height} JPEG (${(out.jpeg.length / 1e6).toFixed(1)} MB, q90): ${fmt(times)}\n`,
  );

  const root = await mkdtemp(join(tmpdir(), 'stackcast-bench-'));
  const { app } = await startServer({ workFolder: join(root, 'work') });
  const notifier = app.get(ImageNotifier);
  const publishes = [];
  for (let i = 0; i < RUNS; i++) {
    const began = performance.now();
    await notifier.publish(tiff, { stackSize: i + 1 });
    publishes.push(performance.now() - began);
  }
  await app.close();
  await rm(root, { recursive: true, force: true });
  process.stdout.write(`ImageNotifier.publish of the same TIFF (convert + atomic writes + broadcast): ${fmt(publishes)}\n`);
}

process.stdout.write(`stackcast image sources: ${RUNS} runs each, node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})\n`);
await conversion();
await watchLatency('1280x960 JPEG (passed through)', 500, (i) => jpeg(1280, 960, i + 1), 'jpg');
await watchLatency('1280x960 JPEG (passed through)', 100, (i) => jpeg(1280, 960, i + 1), 'jpg');
await watchLatency('16-bit 4000x3000 TIFF (converted)', 500, (i) => tiff16(4000, 3000, i + 1), 'tif');
