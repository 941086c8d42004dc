#!/usr/bin/env node
// What the lobby weighs on a phone, against one home-zoom update of one scope. `npm run bench:lobby-bytes`.
//
//   node bench/lobby-bytes.mjs [--scopes 4]
//
// The built service (dist/main.js, PORT=0) with N scopes, each holding a 4000x3000 synthetic
// stack. A phone (390x844 CSS at 3x, Chromium) loads /scopes until every card shows its
// thumbnail: every byte of it (HTML, JS, CSS, catalogue, thumbnails, favicon, the WebSocket's
// list) as the network carried it (compressed bodies plus headers). Then the same phone on one
// scope's viewer, idle at home zoom, gets one new version: every byte from the publish until
// the new image is on screen (the ws message, data.json, the DZI, the tiles).
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { makeAstroJpeg } from './lib/astro.mjs';
import { startOnFreePort } from './lib/proc.mjs';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const arg = (name, fallback) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback);
const SCOPES = arg('--scopes', 4);
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true };

function start() {
  return startOnFreePort(MAIN, { HOST: '127.0.0.1' }, 'stackcast-lobby-bytes');
}

async function publish(base, id, jpeg, stackSize) {
  const path = id === 'main' ? '/api/image' : `/s/${id}/api/image`;
  const res = await fetch(`${base}${path}?stackSize=${stackSize}&exposure=${stackSize * 30}`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: jpeg });
  await res.arrayBuffer();
  if (res.status !== 200) {
    throw new Error(`publish into ${id}: HTTP ${res.status}`);
  }
}

/** Counts every response's bytes on the wire (body as sent, headers) and every WebSocket frame received, by kind. */
function meter(page) {
  const rows = [];
  page.on('requestfinished', async (request) => {
    const sizes = await request.sizes().catch(() => null);
    if (sizes) {
      rows.push({ kind: kindOf(new URL(request.url()).pathname), bytes: sizes.responseBodySize + sizes.responseHeadersSize });
    }
  });
  page.on('websocket', (ws) => ws.on('framereceived', (frame) => rows.push({ kind: 'ws', bytes: Buffer.byteLength(frame.payload) + 2 })));
  return {
    reset: () => rows.splice(0),
    total: () => rows.reduce((sum, r) => sum + r.bytes, 0),
    byKind: () => rows.reduce((acc, r) => ({ ...acc, [r.kind]: (acc[r.kind] ?? 0) + r.bytes }), {}),
  };
}

function kindOf(path) {
  if (/\/image_files\/\d+\/\d+_\d+\.(jpeg|webp)$/.test(path)) {
    return 'tiles';
  }
  return /\.(\w+)$/.exec(path)?.[1] ?? 'html';
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;

const service = await start();
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
try {
  const ids = ['main', ...Array.from({ length: SCOPES - 1 }, (_, i) => `scope-${i + 2}`)];
  const images = [await makeAstroJpeg(4000, 3000, 1), await makeAstroJpeg(4000, 3000, 2)];
  for (const [i, id] of ids.entries()) {
    await publish(service.base, id, images[i % 2], 10 + i);
  }

  // The lobby, cold, until every card shows its thumbnail.
  const lobbyContext = await browser.newContext(PHONE);
  const lobby = await lobbyContext.newPage();
  const lobbyBytes = meter(lobby);
  await lobby.goto(`${service.base}/scopes`);
  await lobby.waitForFunction((n) => [...document.querySelectorAll('.thumb')].filter((img) => !img.hidden && img.complete && img.naturalWidth > 0).length === n, ids.length, { timeout: 30_000 });
  await lobby.waitForLoadState('networkidle');
  const lobbyTotal = lobbyBytes.total();
  const lobbyKinds = lobbyBytes.byKind();
  await lobbyContext.close();

  // One scope's viewer, idle at home zoom, then one new version until it is on screen.
  const id = ids[1];
  const viewerContext = await browser.newContext(PHONE);
  const viewer = await viewerContext.newPage();
  const viewerBytes = meter(viewer);
  await viewer.goto(`${service.base}/s/${id}/`);
  await viewer.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.version > 0 && !window.stackcast.busy, undefined, { timeout: 30_000 });
  await viewer.waitForLoadState('networkidle');
  const before = await viewer.evaluate(() => window.stackcast.version);
  viewerBytes.reset();
  await publish(service.base, id, images[0], 99);
  await viewer.waitForFunction((v) => window.stackcast.version > v && !window.stackcast.busy, before, { timeout: 30_000 });
  await viewer.waitForLoadState('networkidle');
  const updateTotal = viewerBytes.total();
  const updateKinds = viewerBytes.byKind();
  await viewerContext.close();

  console.log(`${new Date().toISOString().slice(0, 10)} lobby-bytes: ${SCOPES} scopes of a 4000x3000 synthetic stack, a phone 390x844 @3x (Chromium), bytes on the wire (bodies as sent + headers)`);
  console.log(`  whole lobby, cold, every thumbnail shown: ${kb(lobbyTotal)}  (${Object.entries(lobbyKinds).map(([k, v]) => `${k} ${kb(v)}`).join(', ')})`);
  console.log(`  one home-zoom update of one scope:        ${kb(updateTotal)}  (${Object.entries(updateKinds).map(([k, v]) => `${k} ${kb(v)}`).join(', ')})`);
  console.log(`  lobby / update: ${(lobbyTotal / updateTotal).toFixed(2)} ${lobbyTotal < updateTotal ? '(the whole lobby costs less than one update)' : '(OVER: the lobby costs more than one update)'}`);
} finally {
  await browser.close();
  service.child.kill('SIGTERM');
  await new Promise((r) => service.child.once('exit', r));
  await rm(service.work, { recursive: true, force: true });
}
