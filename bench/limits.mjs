// Limits figures: RSS with idle sockets, and what one address holding thousands of
// sockets leaves for the others. Loopback only, bounded in count and time.
// Run after `npm run build`: node bench/limits.mjs [idleSockets=2000] [hogSockets=5000]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const idle = Number(process.argv[2] ?? 2000);
const hog = Number(process.argv[3] ?? 5000);
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = s.address();
    s.close(() => resolve(free));
  });
});
const work = mkdtempSync(join(tmpdir(), 'stackcast-limits-'));
const child = spawn(process.execPath, ['dist/main.js'], { env: { PATH: process.env.PATH, PORT: String(port), WORK_FOLDER: work, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
let log = '';
child.stdout.on('data', (d) => (log += d));
child.stderr.on('data', (d) => (log += d));
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
const status = (localAddress) =>
  new Promise((resolve) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path: '/status', localAddress, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ code: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', (e) => resolve({ code: e.code, ms: performance.now() - t0 }));
    req.end();
  });
const open = (localAddress) =>
  new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.on('error', () => resolve(s));
  });
for (let i = 0; i < 200 && (await status('127.0.0.1')).code !== 200; i++) await new Promise((r) => setTimeout(r, 50));

const base = rss();
const sockets = [];
// Idle sockets from 50 addresses (40 each, under the per-address cap), as phones would hold them.
for (let i = 0; i < idle; i++) sockets.push(await open(`127.0.1.${1 + (i % 50)}`));
await new Promise((r) => setTimeout(r, 500));
const withIdle = rss();
// One address opens `hog` sockets as fast as it can.
const t0 = performance.now();
const hogs = [];
for (let i = 0; i < hog; i++) hogs.push(await open('127.0.0.3'));
const hogMs = performance.now() - t0;
await new Promise((r) => setTimeout(r, 1500));
const stillOpen = hogs.filter((s) => !s.destroyed && s.readyState === 'open').length;
const other = await status('127.0.0.2');
const afterHog = rss();
for (const s of [...sockets, ...hogs]) s.destroy();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(work, { recursive: true, force: true });
console.log(`RSS idle service: ${base.toFixed(0)} MB; with ${idle} idle sockets from 50 addresses: ${withIdle.toFixed(0)} MB (+${(((withIdle - base) * 1024) / idle).toFixed(1)} KB per socket)`);
console.log(`one address opened ${hog} sockets in ${hogMs.toFixed(0)} ms: ${stillOpen} still open after 1.5 s; /status from another address: ${other.code} in ${other.ms.toFixed(1)} ms; RSS ${afterHog.toFixed(0)} MB`);
console.log(`refusal lines logged: ${(log.match(/refused connection/g) ?? []).length}, e.g. ${/refused connection[^\n]*/.exec(log)?.[0] ?? '(none)'}`);
