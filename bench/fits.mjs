#!/usr/bin/env node
// FITS to the published JPEG, measured (figures, not assertions): run `npm run build` first.
//
//   node bench/fits.mjs [runs]
//
// 4000x3000 linear FITS (16-bit and 32-bit float, grey and RGB) to the published JPEG through
// ImageConverter.toPublishable (the publish path: sniff, read, statistics from a subsample,
// lookup-table / one-pass stretch to 8 bits, sharp JPEG encode at the default size and
// quality), then split into its two steps; next to a 16-bit RGB TIFF of the same pixels with
// STRETCH=never (no stretch) and auto (stretchIfLinear). Wall clock and CPU time.
import 'reflect-metadata';
import sharp from 'sharp';
import { encodeFits } from '../test/fixtures/fits-writer.mjs';
import { encodeTiff } from '../test/fixtures/tiff-writer.mjs';
import { median } from './lib/stats.mjs';

const dist = new URL('../dist/', import.meta.url);
const { fitsToSharpInput } = await import(new URL('modules/image-notifier/fits-intake.js', dist).href);
const { ImageConverter } = await import(new URL('modules/image-notifier/image-converter.service.js', dist).href);
const { resolveImageServerOptions } = await import(new URL('index.js', dist).href);

const RUNS = Number(process.argv[2] ?? 7);
const WIDTH = 4000;
const HEIGHT = 3000;
const options = resolveImageServerOptions();
const { maxImageSize: max, jpegQuality: quality } = options;

/** A linear sky around 3 % of full scale, with noise and stars. */
function sky(channels, full) {
  const data = new Float32Array(WIDTH * HEIGHT * channels);
  let seed = 5;
  for (let i = 0; i < WIDTH * HEIGHT; i++) {
    seed = (seed * 16807) % 2147483647;
    const star = seed % 5000 === 0;
    for (let c = 0; c < channels; c++) {
      data[i * channels + c] = (star ? 0.9 : 0.03 + 0.002 * c + ((seed >> (c * 4)) % 200) / 40000) * full;
    }
  }
  return data;
}

const encode = ({ data, raw }) =>
  sharp(data, { raw })
    .resize({ width: max, height: max, fit: 'inside', withoutEnlargement: true })
    .toColourspace(raw.channels === 1 ? 'b-w' : 'srgb')
    .jpeg({ quality })
    .toBuffer();

const now = () => performance.now();
const fmt = (v) => `${median(v).toFixed(0).padStart(4)} ms (min ${Math.min(...v).toFixed(0)}, max ${Math.max(...v).toFixed(0)})`;

async function measure(name, steps) {
  const times = Object.fromEntries([...Object.keys(steps), 'total'].map((k) => [k, []]));
  const cpu = [];
  for (let run = 0; run < RUNS + 1; run++) {
    let carry;
    const cpuStart = process.cpuUsage();
    const start = now();
    for (const [step, fn] of Object.entries(steps)) {
      const t = now();
      carry = await fn(carry);
      if (run > 0) {
        times[step].push(now() - t);
      }
    }
    if (run > 0) {
      times.total.push(now() - start);
      const used = process.cpuUsage(cpuStart);
      cpu.push((used.user + used.system) / 1000);
    }
  }
  console.log(`\n${name}  (median of ${RUNS} runs, 1 warm-up)`);
  for (const [step, v] of Object.entries(times)) {
    console.log(`  ${step.padEnd(34)} ${fmt(v)}`);
  }
  // CPU time of all threads: on a busy machine it says more than the wall clock.
  console.log(`  ${'total CPU time (all threads)'.padEnd(34)} ${fmt(cpu)}`);
}

const files = {
  'FITS 16-bit grey': encodeFits({ width: WIDTH, height: HEIGHT, channels: 1, bitpix: 16, data: sky(1, 65535) }),
  'FITS 16-bit RGB': encodeFits({ width: WIDTH, height: HEIGHT, channels: 3, bitpix: 16, data: sky(3, 65535) }),
  'FITS 32-bit float grey': encodeFits({ width: WIDTH, height: HEIGHT, channels: 1, bitpix: -32, data: sky(1, 1) }),
  'FITS 32-bit float RGB': encodeFits({ width: WIDTH, height: HEIGHT, channels: 3, bitpix: -32, data: sky(3, 1) }),
};
console.log(`${WIDTH}x${HEIGHT}, JPEG quality ${quality}, max size ${max}; node ${process.version}, sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}`);

const converter = new ImageConverter(options);
for (const [name, bytes] of Object.entries(files)) {
  await measure(`${name} (${(bytes.length / 1e6).toFixed(0)} MB): ImageConverter.toPublishable (STRETCH=auto)`, {
    toPublishable: () => converter.toPublishable(bytes),
  });
  await measure(`${name}: the same, step by step`, {
    'fitsToSharpInput (read + stretch)': () => fitsToSharpInput(bytes, 'auto'),
    'sharp JPEG encode': encode,
  });
}

const rgb16 = sky(3, 65535);
const tiff = encodeTiff({ width: WIDTH, height: HEIGHT, channels: 3, bits: 16, data: Uint16Array.from(rgb16, Math.round) });
const never = new ImageConverter(resolveImageServerOptions({ stretch: 'never' }));
await measure(`TIFF 16-bit RGB (${(tiff.length / 1e6).toFixed(0)} MB): ImageConverter.toPublishable, STRETCH=never`, {
  toPublishable: () => never.toPublishable(tiff),
});
await measure('TIFF 16-bit RGB: ImageConverter.toPublishable, STRETCH=auto (stretched)', {
  toPublishable: () => converter.toPublishable(tiff),
});
