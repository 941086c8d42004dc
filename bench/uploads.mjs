// Memory under uploads (issue 13, finding 7): N concurrent big TIFF uploads with the token.
// Prints the service's RSS before, at its peak and after, and how many were published or
// refused (503 + Retry-After beyond the upload slots). Loopback only.
// Run after `npm run build`: node bench/uploads.mjs [uploads=20] [megabytes=60]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';

const uploads = Number(process.argv[2] ?? 20);
const megabytes = Number(process.argv[3] ?? 60);
const token = 'bench-token-0123456789abcdef';
const side = Math.round(Math.sqrt((megabytes * 1024 * 1024) / 3));
const tiff = await sharp({ create: { width: side, height: side, channels: 3, noise: { type: 'gaussian', mean: 100, sigma: 30 } } })
  .tiff({ compression: 'none' })
  .toBuffer();
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = s.address();
    s.close(() => resolve(free));
  });
});
const work = mkdtempSync(join(tmpdir(), 'stackcast-uploads-'));
const child = spawn(process.execPath, ['dist/main.js'], {
  env: { PATH: process.env.PATH, PORT: String(port), WORK_FOLDER: work, CONTROL_TOKEN: token, NO_COLOR: '1', ...(process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {}) },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
for (let i = 0; i < 300; i++) {
  const ok = await fetch(`${base}/status`).then((r) => r.status === 200, () => false);
  if (ok) break;
  await new Promise((r) => setTimeout(r, 50));
}
const before = rss();
let peak = before;
const sampler = setInterval(() => (peak = Math.max(peak, rss())), 20);
const t0 = performance.now();
const codes = await Promise.all(
  Array.from({ length: uploads }, (_, i) =>
    fetch(`${base}/api/image?stackSize=${i + 1}`, { method: 'PUT', headers: { 'Content-Type': 'image/tiff', Authorization: `Bearer ${token}` }, body: tiff }).then(
      async (res) => `${res.status}${res.status === 503 ? ` (Retry-After ${res.headers.get('retry-after')})` : ''}`,
      (err) => err.code ?? err.cause?.code ?? 'error',
    ),
  ),
);
const seconds = (performance.now() - t0) / 1000;
// Give the allocator and the GC a moment, as the service gets between two stacks.
await new Promise((r) => setTimeout(r, 3000));
clearInterval(sampler);
const after = rss();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(work, { recursive: true, force: true });
const counts = Object.entries(codes.reduce((m, c) => ((m[c] = (m[c] ?? 0) + 1), m), {})).map(([c, n]) => `${n}× ${c}`);
console.log(`${uploads} concurrent ${(tiff.length / 1048576).toFixed(1)} MB TIFF uploads (${side}x${side}) with the token, in ${seconds.toFixed(1)} s: ${counts.join(', ')}`);
console.log(`service RSS: ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB at the peak, ${after.toFixed(0)} MB 3 s after`);
