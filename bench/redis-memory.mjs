// Redis memory under a stream of publishes (issue 19, point 6): the same publishes through
// the real RedisBus (dist/) into one redis-server per setting, run side by side, with
// INFO memory's used_memory sampled as they go. Settings: the old one-hour expiry of
// replaced versions, the default now, and the old expiry under the compose's maxmemory
// with volatile-ttl (only keys with a TTL evicted: latest stays).
//   npm run build && node bench/redis-memory.mjs [--seconds 240] [--rate 4] [--kb 256] [--maxmemory 64mb]
// Bounded: publishes stop after --seconds, the whole run ends by --seconds + 60 s; every
// redis-server is started here and stopped by its PID.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { logger, option } from './lib/cli.mjs';
import { freePort } from './lib/proc.mjs';

const seconds = Number(option('--seconds') ?? 240);
const rate = Number(option('--rate') ?? 4);
const kb = Number(option('--kb') ?? 256);
const maxmemory = option('--maxmemory') ?? '64mb';
const sampleEvery = Math.max(5, Math.round(seconds / 8));
const log = logger('redis-memory');

const { RedisBus, REPLACED_TTL_SECONDS } = await import(new URL('../dist/modules/cluster/redis-bus.service.js', import.meta.url).href);
const { Logger } = await import('@nestjs/common');
Logger.overrideLogger(['error']);

const SETTINGS = [
  { name: 'before: replaced kept 3600 s', ttl: 3600, args: [] },
  { name: `now: replaced kept ${REPLACED_TTL_SECONDS} s`, ttl: REPLACED_TTL_SECONDS, args: [] },
  { name: `3600 s, maxmemory ${maxmemory} volatile-ttl`, ttl: 3600, args: ['--maxmemory', maxmemory, '--maxmemory-policy', 'volatile-ttl'] },
];

const servers = [];
const deadline = setTimeout(() => {
  log(`deadline (${seconds + 60} s) passed: stopping`);
  for (const s of servers) s.child.kill('SIGKILL');
  process.exit(2);
}, (seconds + 60) * 1000);

function ping(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
    s.once('data', (d) => (s.destroy(), resolve(d.toString().startsWith('+PONG'))));
    s.once('error', () => resolve(false));
  });
}

async function startRedis(extra) {
  const port = await freePort();
  const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', ...extra], { stdio: 'ignore' });
  child.exited = new Promise((r) => child.once('exit', r));
  const until = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (Date.now() > until) throw new Error(`redis-server on ${port} did not answer`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port, url: `redis://127.0.0.1:${port}` };
}

const usedMemory = async (client) => Number(/used_memory:(\d+)/.exec(await client.info('memory'))[1]);
const mb = (bytes) => (bytes / 1048576).toFixed(1);

const runs = [];
for (const setting of SETTINGS) {
  const server = await startRedis(setting.args);
  servers.push(server);
  const admin = createClient({ url: server.url });
  await admin.connect();
  const bus = new RedisBus({ url: server.url, namespace: 'bench', replicaId: 'bench', replacedTtlSeconds: setting.ttl });
  bus.updates$.subscribe(() => undefined);
  bus.start();
  await new Promise((resolve) => bus.state$.subscribe((s) => s === 'up' && resolve()));
  runs.push({ setting, server, admin, bus, base: await usedMemory(admin), samples: [], published: 0, refused: 0 });
}
log(`${runs.length} redis-servers; ${rate} publishes/s of ${kb} KB each for ${seconds} s, used_memory every ${sampleEvery} s`);

const image = randomBytes(kb * 1024);
const started = Date.now();
let tick = 0;
const publisher = setInterval(() => {
  tick++;
  image.writeUInt32BE(tick, 0);
  for (const run of runs) {
    run.bus.publish(image, { stackSize: tick }).then(
      () => run.published++,
      () => run.refused++,
    );
  }
}, 1000 / rate);
for (let t = sampleEvery; t <= seconds; t += sampleEvery) {
  await new Promise((r) => setTimeout(r, started + t * 1000 - Date.now()));
  const row = [];
  for (const run of runs) {
    const used = await usedMemory(run.admin);
    run.samples.push({ t, used });
    row.push(`${mb(used - run.base)} MB`);
  }
  log(`t=${t}s above the empty server: ${row.join(' | ')}`);
}
clearInterval(publisher);
await new Promise((r) => setTimeout(r, 500));

console.log(`\nRedis used_memory (INFO memory) after ${seconds} s of publishes, ${rate}/s of ${kb} KB (${new Date().toISOString().slice(0, 10)}, node bench/redis-memory.mjs --seconds ${seconds} --rate ${rate} --kb ${kb})`);
console.log(`| setting | ${runs[0].samples.map((s) => `${s.t} s`).join(' | ')} | published | refused | latest kept |`);
console.log(`|---|${runs[0].samples.map(() => '---:').join('|')}|---:|---:|---|`);
for (const run of runs) {
  const latest = (await run.admin.get('bench:latest')) ?? '';
  const kept = latest !== '' && (await run.admin.exists(`bench:image:${latest}`)) === 1 && (await run.admin.ttl('bench:latest')) === -1;
  const cells = run.samples.map((s) => `${mb(s.used - run.base)} MB`);
  console.log(`| ${run.setting.name} | ${cells.join(' | ')} | ${run.published} | ${run.refused} | ${kept ? `yes (v${latest})` : 'NO'} |`);
}
const perPublish = (kb * 1024) / 1048576;
console.log(
  `\nSteady state held by replaced images ≈ ttl × rate × size: at one ${kb} KB stack per 10 s, ` +
    `3600 s → ${mb(360 * perPublish * 1048576)} MB, ${REPLACED_TTL_SECONDS} s → ${mb((REPLACED_TTL_SECONDS / 10) * perPublish * 1048576)} MB (plus the latest).`,
);

for (const run of runs) {
  await run.bus.close();
  await run.admin.close();
  run.server.child.kill('SIGTERM');
  await run.server.child.exited;
}
clearTimeout(deadline);
