#!/usr/bin/env node
// Tile format and quality, chosen by measurement (figures, not assertions). `npm run bench:tiles`.
//
//   node bench/tiles.mjs [runs]            every configuration, then publish -> new_image
//   node bench/tiles.mjs --publish [N]     publish -> new_image only: median of N publishes (default 9)
//
// For a synthetic 12 MP deep-sky stack (noise, stars, nebula), for each tile format, size
// and quality: the CPU and wall time of the whole pyramid (the real PyramidBuilder), the
// bytes a phone (390x844 CSS at 3x) and a desktop (1920x1080 at 1x) fetch at home zoom,
// and how the home view compares with the full image scaled to the same size (PSNR, mean
// absolute error). Then publish -> new_image through the real service for the chosen one.
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { WebSocket } from 'ws';
import { makeAstroJpeg } from './lib/astro.mjs';
import { difference, homeLevel, stitchLevel } from './lib/dzi.mjs';

const dist = new URL('../dist/', import.meta.url);
const { PyramidBuilder } = await import(new URL('modules/web-assets/pyramid.js', dist).href);
const { resolveImageServerOptions } = await import(new URL('config/image-server-options.js', dist).href);

const PUBLISH_ONLY = process.argv[2] === '--publish';
const RUNS = Number(process.argv[PUBLISH_ONLY ? 3 : 2] ?? (PUBLISH_ONLY ? 9 : 3));
const WIDTH = 4000;
const HEIGHT = 3000;
const PHONE = { name: 'phone 390x844@3', cssWidth: 390, cssHeight: 844, dpr: 3 };
const DESKTOP = { name: 'desktop 1920x1080@1', cssWidth: 1920, cssHeight: 1080, dpr: 1 };

const CONFIGS = [
  ...[70, 75, 80, 85].map((quality) => ({ format: 'jpeg', tileSize: 254, overlap: 1, quality })),
  { format: 'jpeg', tileSize: 256, overlap: 0, quality: 80 },
  { format: 'jpeg', tileSize: 510, overlap: 1, quality: 80 },
  { format: 'jpeg', tileSize: 512, overlap: 0, quality: 80 },
  ...[70, 75, 80].map((quality) => ({ format: 'webp', tileSize: 254, overlap: 1, quality })),
  { format: 'webp', tileSize: 510, overlap: 1, quality: 75 },
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const kb = (bytes) => `${(bytes / 1024).toFixed(0)} KB`;

const cpuMs = (usage) => (usage.user + usage.system) / 1000;

if (!PUBLISH_ONLY) {
  console.log(`tiles bench: ${WIDTH}x${HEIGHT} synthetic stack, ${RUNS} runs per configuration, sharp concurrency ${sharp.concurrency()}`);
  const source = await makeAstroJpeg(WIDTH, HEIGHT, 1);
  console.log(`source JPEG (quality 90, as a stacker saves it): ${kb(source.length)}\n`);

  const references = new Map();
  async function reference(level) {
    const key = `${level.width}x${level.height}`;
    if (!references.has(key)) {
      // The full image scaled to the level's size by a good resampler: what the screen should show.
      references.set(key, await sharp(source).resize(level.width, level.height, { kernel: 'lanczos3', fit: 'fill' }).removeAlpha().raw().toBuffer());
    }
    return references.get(key);
  }

  // The same levels without any codec loss (PNG tiles, same downsampling): what the tiles' own
  // encoding costs, apart from the resampling.
  const lossless = new Map();
  {
    const temp = await mkdtemp(join(tmpdir(), 'stackcast-tiles-png-'));
    await sharp(source).png({ compressionLevel: 0 }).tile({ layout: 'dz', size: 510, overlap: 1 }).toFile(join(temp, 'image.dz'));
    for (const screen of [PHONE, DESKTOP]) {
      const level = homeLevel(WIDTH, HEIGHT, screen);
      lossless.set(screen.name, (await stitchLevel(temp, level, 510, 1, 'png')).raw);
    }
    await rm(temp, { recursive: true, force: true });
  }

  const rows = [];
  for (const config of CONFIGS) {
    const walls = [];
    const cpus = [];
    let folder;
    const temp = await mkdtemp(join(tmpdir(), 'stackcast-tiles-'));
    try {
      for (let run = 0; run < RUNS; run++) {
        const builder = new PyramidBuilder({
          webFolder: temp,
          tileFormat: config.format,
          tileSize: config.tileSize,
          tileOverlap: config.overlap,
          tileQuality: config.quality,
          keepVersions: 3,
        });
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await builder.build(run + 1, source);
        walls.push(performance.now() - t0);
        const cpu = process.cpuUsage(cpu0);
        cpus.push((cpu.user + cpu.system) / 1000);
        folder = join(temp, 'v', String(run + 1));
      }
      const ext = config.format;
      const view = {};
      for (const screen of [PHONE, DESKTOP]) {
        const level = homeLevel(WIDTH, HEIGHT, screen);
        const stitched = await stitchLevel(folder, level, config.tileSize, config.overlap, ext);
        const diff = difference(stitched.raw, await reference(level));
        const codec = difference(stitched.raw, lossless.get(screen.name));
        view[screen.name] = { level, ...stitched, ...diff, codecPsnr: codec.psnr };
      }
      const phone = view[PHONE.name];
      const desktop = view[DESKTOP.name];
      rows.push({
        config: `${config.format} q${config.quality} ${config.tileSize}+${config.overlap}`,
        cpu: `${median(cpus).toFixed(0)} ms`,
        wall: `${median(walls).toFixed(0)} ms`,
        phoneLevel: `${phone.level.width}x${phone.level.height}`,
        phoneTiles: phone.tiles,
        phoneBytes: kb(phone.bytes),
        phonePsnr: phone.psnr.toFixed(1),
        phoneMae: phone.mae.toFixed(2),
        phoneCodec: phone.codecPsnr.toFixed(1),
        desktopBytes: kb(desktop.bytes),
        desktopPsnr: desktop.psnr.toFixed(1),
      });
      process.stdout.write('.');
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }
  console.log('\n');
  const columns = [
    ['config', 'format q size+overlap'],
    ['cpu', 'build CPU'],
    ['wall', 'build wall'],
    ['phoneLevel', 'phone level'],
    ['phoneTiles', 'tiles'],
    ['phoneBytes', 'phone bytes'],
    ['phonePsnr', 'phone PSNR dB'],
    ['phoneMae', 'phone MAE'],
    ['phoneCodec', 'codec PSNR dB'],
    ['desktopBytes', 'desktop bytes'],
    ['desktopPsnr', 'desktop PSNR dB'],
  ];
  const widths = columns.map(([key, title]) => Math.max(title.length, ...rows.map((r) => String(r[key]).length)));
  console.log(`| ${columns.map(([, t], i) => t.padEnd(widths[i])).join(' | ')} |`);
  console.log(`|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of rows) {
    console.log(`| ${columns.map(([key], i) => (i === 0 ? String(row[key]).padEnd(widths[i]) : String(row[key]).padStart(widths[i]))).join(' | ')} |`);
  }
  console.log(`\nPSNR / MAE: the home view stitched from its tiles against the source scaled to the same size (Lanczos3).`);
  console.log(`codec PSNR: the same home view against lossless tiles of the same level (the encoding's own loss).`);
  const { tileFormat, tileSize, tileOverlap, tileQuality, keepVersions } = resolveImageServerOptions();
  console.log(`Chosen (option defaults): ${JSON.stringify({ tileFormat, tileSize, tileOverlap, tileQuality, keepVersions })}\n`);
}

// Publish -> new_image through the real service, for a 12 MP JPEG passed through.
const { Test } = await import('@nestjs/testing');
const { ImageServerModule, ImageNotifier, ViewerWsAdapter } = await import(new URL('index.js', dist).href);
const { ServerLifecycle } = await import(new URL('modules/lifecycle/server-lifecycle.service.js', dist).href);
const work = await mkdtemp(join(tmpdir(), 'stackcast-tiles-service-'));
const moduleRef = await Test.createTestingModule({
  imports: [ImageServerModule.forRoot({ listen: true, port: 0, host: '127.0.0.1', workFolder: work, printQrCode: false, disconnectGraceMs: 50 })],
}).compile();
const app = moduleRef.createNestApplication({ logger: ['error'] });
app.useWebSocketAdapter(new ViewerWsAdapter(app));
await app.init();
try {
  const port = app.get(ServerLifecycle).port;
  const notifier = app.get(ImageNotifier);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const images = await Promise.all([1, 2].map((seed) => makeAstroJpeg(WIDTH, HEIGHT, seed)));
  const latencies = [];
  const cpus = [];
  const count = PUBLISH_ONLY ? RUNS : Math.max(5, RUNS);
  // One publish first, not counted: the first pyramid loads libvips' JPEG encoder.
  await notifier.publish(images[1]);
  for (let run = 0; run < count; run++) {
    const arrived = new Promise((resolve) => ws.once('message', resolve));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await notifier.publish(images[run % 2]);
    await arrived;
    latencies.push(performance.now() - t0);
    const cpu = process.cpuUsage(cpu0);
    cpus.push(cpuMs(cpu));
  }
  ws.close();
  console.log(
    `publish -> new_image, 12 MP JPEG (${kb(images[0].length)}), check + pyramid + writes, median of ${count}: ` +
      `wall ${median(latencies).toFixed(0)} ms (min ${Math.min(...latencies).toFixed(0)}, max ${Math.max(...latencies).toFixed(0)}), ` +
      `CPU ${median(cpus).toFixed(0)} ms (min ${Math.min(...cpus).toFixed(0)}), target < 500 ms wall; load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores`,
  );
} finally {
  await app.close();
  await rm(work, { recursive: true, force: true });
}
