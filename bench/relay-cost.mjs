// What UPSTREAM_URL costs the local viewers when the hub is down: PUT -> new_image on a local
// /ws viewer without UPSTREAM_URL, with it pointing at a closed port (connection refused) and
// at a hub that takes the connection but never answers; alternating, against dist/main.js (PORT=0).
// Usage: npm run build && node bench/relay-cost.mjs [--publishes 12]
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { makeAstroJpeg } from './lib/astro.mjs';
import { median } from './lib/stats.mjs';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const publishes = Number(process.argv[process.argv.indexOf('--publishes') + 1]) || 12;
const TOKEN = 'bench-relay-token-0123456789';

async function listener(onConnection) {
  const server = createServer(onConnection);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

// A closed port: bound then closed, so connecting is refused.
const closed = await listener(() => undefined);
const closedPort = closed.address().port;
await new Promise((r) => closed.close(r));
// A hub that reads everything and never answers.
const silentSockets = new Set();
const silent = await listener((socket) => {
  silentSockets.add(socket);
  socket.on('data', () => undefined).on('error', () => undefined);
});

async function start(upstream) {
  const work = await mkdtemp(join(tmpdir(), 'stackcast-relay-cost-'));
  const env = { PATH: process.env.PATH, PORT: '0', WORK_FOLDER: work, NO_COLOR: '1' };
  if (upstream) {
    Object.assign(env, { UPSTREAM_URL: upstream, UPSTREAM_TOKEN: TOKEN });
  }
  const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const port = /listening on \S*:(\d+)\)/.exec(out)?.[1];
    if (port && (await fetch(`http://127.0.0.1:${port}/status`).then((r) => r.status).catch(() => 0)) === 200) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      return { port: Number(port), child, work, ws };
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      throw new Error(`the service did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function nextNewImage(ws) {
  return new Promise((resolve) => {
    const onMessage = (data) => {
      if (JSON.parse(data.toString()).type === 'new_image') {
        ws.off('message', onMessage);
        resolve();
      }
    };
    ws.on('message', onMessage);
  });
}

const images = [];
for (let i = 0; i < publishes; i++) {
  images.push(await makeAstroJpeg(3000, 2000, i + 1));
}
const services = {
  off: await start(undefined),
  refused: await start(`http://127.0.0.1:${closedPort}/s/club-a/`),
  silent: await start(`http://127.0.0.1:${silent.address().port}/s/club-a/`),
};
const modes = Object.keys(services);
const times = Object.fromEntries(modes.map((m) => [m, []]));
try {
  for (let i = 0; i < publishes; i++) {
    // A different order each round, so no mode always goes first.
    for (const mode of modes.map((_, k) => modes[(k + i) % modes.length])) {
      const { port, ws } = services[mode];
      const announced = nextNewImage(ws);
      const began = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/api/image?stackSize=${i + 1}`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: images[i] });
      await res.arrayBuffer();
      if (res.status !== 200) {
        throw new Error(`publish ${i + 1} (${mode}): ${res.status}`);
      }
      await announced;
      times[mode].push(performance.now() - began);
    }
  }
  const states = {};
  for (const mode of modes) {
    states[mode] = (await (await fetch(`http://127.0.0.1:${services[mode].port}/status`)).json()).upstream.state;
  }
  console.log(`${new Date().toISOString().slice(0, 10)}, ${publishes} publishes of a 3000x2000 JPEG (${(images[0].length / 1e6).toFixed(1)} MB) per mode, first left out; node bench/relay-cost.mjs --publishes ${publishes}`);
  for (const mode of modes) {
    const t = times[mode].slice(1);
    console.log(`PUT -> new_image, UPSTREAM_URL ${mode.padEnd(7)} (upstream ${states[mode]}): median ${median(t).toFixed(0)} ms, min ${Math.min(...t).toFixed(0)}, max ${Math.max(...t).toFixed(0)}`);
  }
} finally {
  for (const { child, work, ws } of Object.values(services)) {
    ws.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(work, { recursive: true, force: true });
  }
  silentSockets.forEach((socket) => socket.destroy());
  silent.close();
}
