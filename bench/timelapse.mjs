// Time and bytes of the history's pieces (issue 21), on the built dist/:
//  - the preview of one version (4096 x 2731 JPEG -> longest side 1280), made beside the pyramid
//  - a 200-frame night's timelapse at 640 px (animated WebP), as GET /api/history/timelapse.webp makes it
// Usage: npm run build && node bench/timelapse.mjs [--frames 200] [--width 640]
import { performance } from 'node:perf_hooks';
import { cpus } from 'node:os';
import sharp from 'sharp';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const FRAMES = arg('frames', 200);
const WIDTH = arg('width', 640);
const { animatedWebp, PREVIEW_SIZE } = await import(new URL('../dist/modules/history/history.service.js', import.meta.url).href);

/** A sky that gets cleaner as the stack grows: a galaxy-ish glow under noise falling as 1/sqrt(n). */
async function stackImage(n, width, height) {
  const noise = Math.round(60 / Math.sqrt(n));
  const glow = Buffer.from(
    `<svg width="${width}" height="${height}"><defs><radialGradient id="g"><stop offset="0" stop-color="#fff8e0"/><stop offset="1" stop-color="#000" stop-opacity="0"/></radialGradient></defs>` +
      `<rect width="100%" height="100%" fill="#05070d"/><ellipse cx="${width / 2}" cy="${height / 2}" rx="${width / 4}" ry="${height / 9}" fill="url(#g)" transform="rotate(-25 ${width / 2} ${height / 2})"/></svg>`,
  );
  const base = await sharp(glow).raw().toBuffer({ resolveWithObject: true });
  return sharp({ create: { width, height, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 0, sigma: Math.max(1, noise) } } })
    .composite([{ input: base.data, raw: base.info, blend: 'add' }])
    .jpeg({ quality: 90 })
    .toBuffer();
}

const full = await stackImage(4, 4096, 2731);
const previewTimes = [];
let preview;
for (let i = 0; i < 10; i++) {
  const began = performance.now();
  preview = await sharp(full).resize(PREVIEW_SIZE, PREVIEW_SIZE, { fit: 'inside' }).jpeg({ quality: 80 }).toBuffer();
  previewTimes.push(performance.now() - began);
}
previewTimes.sort((a, b) => a - b);

const previews = [];
for (let n = 1; n <= FRAMES; n++) {
  previews.push(await sharp(await stackImage(n, 1280, 853)).jpeg({ quality: 80 }).toBuffer());
}
const previewBytes = previews.reduce((s, p) => s + p.length, 0);
const rssBefore = process.memoryUsage().rss;
const began = performance.now();
const webp = await animatedWebp(previews, WIDTH);
const ms = performance.now() - began;
const meta = await sharp(webp, { animated: true }).metadata();

console.log(`date: ${new Date().toISOString()}  cpus: ${cpus().length} x ${cpus()[0]?.model ?? '?'}  sharp/libvips: ${sharp.versions.vips}`);
console.log(`preview of a 4096x2731 JPEG (${(full.length / 1024).toFixed(0)} KB) -> ${PREVIEW_SIZE} px: median ${previewTimes[5].toFixed(0)} ms, ${(preview.length / 1024).toFixed(0)} KB`);
console.log(`history of ${FRAMES} previews (1280x853): ${(previewBytes / 1024 / 1024).toFixed(1)} MB, ${(previewBytes / FRAMES / 1024).toFixed(0)} KB per frame`);
console.log(`timelapse ${FRAMES} frames at ${WIDTH} px: ${(ms / 1000).toFixed(1)} s, ${(webp.length / 1024 / 1024).toFixed(2)} MB (${meta.pages} pages of ${meta.width}x${meta.pageHeight}), RSS +${((process.memoryUsage().rss - rssBefore) / 1024 / 1024).toFixed(0)} MB`);
