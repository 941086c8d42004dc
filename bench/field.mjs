#!/usr/bin/env node
// Field bench (issue 9): phones on a shared 20 Mbit/s hotspot, in a private network
// namespace whose loopback is shaped with tc tbf. A real Chromium phone records what the
// viewer fetches after a publish; N simulated phones replay that list at once. See bench/README.md.
//
//   npm run bench:field                       full run: 30 phones, 5 updates, 12 MP stacks
//   npm run bench:field -- --quick            smoke run: 8 phones, 2 updates, 3 MP stacks
//   npm run bench:field -- --scopes 4         issue 20: 4 scopes publishing at once, phones spread over them + 5 lobby phones
//   options: --rate <Mbit/s> (20)  --phones <N> (30)  --updates <K> (5)  --dist <dir> (dist/)
//            --scopes <N>  --lobby-phones <N> (5; quick 2)  --stagger <ms> (0: all scopes publish at once)
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeAstroField } from './lib/astro.mjs';
import { launchChromium, RecordedPage } from './lib/field-browser.mjs';
import { download, makePlan, Monitor, publish, ReplayPhone } from './lib/field-phones.mjs';
import { reportScopes, runScopes, scopeIds } from './lib/field-scopes.mjs';
import { createShapedNetns, deleteNetns, netnsSupport, PUBLISHER_ADDRESS } from './lib/netns.mjs';
import { args, flag, logger, option, tempFolders } from './lib/cli.mjs';
import { freePort, nowMs, spawnNode, stopChild, waitForMessage, waitUntilUp } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';
import { renderTable } from './lib/table.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
const positive = (name, fallback) => {
  const raw = option(name);
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`${name} must be a positive number, got ${raw}`);
    process.exit(2);
  }
  return value;
};

const QUICK = flag('--quick');
const RATE = positive('--rate', 20);
const PHONES = Math.round(positive('--phones', QUICK ? 8 : 30));
const UPDATES = Math.round(positive('--updates', QUICK ? 2 : 5));
const IMAGE = QUICK ? { width: 2000, height: 1500, targetBytes: 800 * 1024 } : { width: 4000, height: 3000, targetBytes: 3 * 1024 * 1024 };
const SCOPES = option('--scopes') === undefined ? 0 : Math.round(positive('--scopes', 1));
const LOBBY_PHONES = Math.round(positive('--lobby-phones', QUICK ? 2 : 5));
const STAGGER_MS = option('--stagger') === undefined ? 0 : positive('--stagger', 1);
const DIST = resolve(ROOT, option('--dist') ?? 'dist');
/** Whole run, outer hard limit: a shaped link makes a bad build slow, never endless. */
const RUN_LIMIT_MS = (QUICK ? 8 : 40) * 60_000;
/** One update of N phones: bytes / rate, times 3, at least a minute. */
const replayTimeoutMs = (bytesPerPhone, n) => Math.max(60_000, ((bytesPerPhone * n * 8) / (RATE * 1e6)) * 3000);

const log = logger('field', 6);

// ------------------------------------------------------------------ outside the namespace

async function outside() {
  const missing = netnsSupport();
  if (missing) {
    console.log(`bench:field skipped: ${missing}`);
    process.exit(0);
  }
  const ns = `stackcast-field-${process.pid}`;
  let child = null;
  let exitCode = 1;
  const cleanUp = () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
    deleteNetns(ns);
  };
  const onSignal = (signal) => {
    log(`${signal}: stopping, deleting ${ns}`);
    cleanUp();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const qdisc = createShapedNetns(ns, { rateMbit: RATE });
    log(`namespace ${ns}: lo mtu 1500, ${qdisc.split('\n').find((l) => l.includes('tbf'))}`);
    // `ip netns exec` execs the command: the child's PID is node's own.
    child = spawn('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--inside', ...args], { stdio: 'inherit' });
    const limit = setTimeout(() => {
      log(`run limit of ${RUN_LIMIT_MS / 60_000} min reached: stopping`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, RUN_LIMIT_MS);
    exitCode = await new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 1 : 0))));
    clearTimeout(limit);
  } finally {
    cleanUp();
  }
  process.exit(exitCode);
}

// ------------------------------------------------------------------- inside the namespace

async function inside() {
  const children = [];
  const { tempDir, removeTemps } = tempFolders();
  let browser = null;
  const phones = [];
  let monitor = null;
  let stopping = false;
  const stopAll = async () => {
    if (stopping) {
      return;
    }
    stopping = true;
    for (const p of phones) {
      p.close();
    }
    monitor?.close();
    await browser?.close().catch(() => undefined);
    await Promise.all(children.map((c) => stopChild(c)));
    removeTemps();
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => void stopAll().finally(() => process.exit(130)));
  }

  try {
    log(`rate ${RATE} Mbit/s, ${PHONES} phones${SCOPES ? ` over ${SCOPES} scopes + ${LOBBY_PHONES} lobby phones` : ''}, ${UPDATES} updates, ${IMAGE.width}x${IMAGE.height} stacks${QUICK ? ' (quick)' : ''}`);
    const field = await makeAstroField(IMAGE);
    // Successive stacks of one night: the same field, new noise each time.
    const pool = [];
    for (let i = 0; i < 4; i++) {
      pool.push(await field.variant(i));
    }
    let turn = 0;
    const nextImage = () => pool[turn++ % pool.length];
    log(`stacks: ${pool.map((j) => `${(j.length / 1024).toFixed(0)} KB`).join(', ')}`);

    const sanity = await sanityCheck(pool[0]);
    log(`sanity: one ${(pool[0].length / 1e6).toFixed(2)} MB download on the shaped link: ${sanity.shaped.mbit.toFixed(1)} Mbit/s (${sanity.shaped.seconds.toFixed(2)} s); publisher path ${PUBLISHER_ADDRESS}: ${sanity.unshaped.mbit.toFixed(0)} Mbit/s`);

    if (SCOPES) {
      const service = await startService(DIST, tempDir('stackcast-field-work-'), children);
      browser = await launchChromium();
      const ids = scopeIds(SCOPES);
      const track = (x) => (phones.push(x), x);
      const result = await runScopes({ port: service.port, browser, ids, phones: PHONES, lobbyPhones: LOBBY_PHONES, updates: UPDATES, staggerMs: STAGGER_MS, pool, log, replayTimeoutMs, track });
      const jpeg = median(pool.map((j) => j.length));
      console.log(`sanity: a ${(pool[0].length / 1e6).toFixed(2)} MB download alone on the shaped link: ${sanity.shaped.mbit.toFixed(1)} Mbit/s`);
      const rows = reportScopes(result, { rate: RATE, phones: PHONES, lobbyPhones: LOBBY_PHONES, updates: UPDATES, staggerMs: STAGGER_MS, imageNote: `stacks ${IMAGE.width}x${IMAGE.height} of ${kb(jpeg)} KB` });
      const config = { rateMbit: RATE, phones: PHONES, lobbyPhones: LOBBY_PHONES, scopes: ids, staggerMs: STAGGER_MS, updates: UPDATES, quick: QUICK, image: IMAGE, dist: DIST };
      writeResults('field-scopes', { config, sanity, ...result, rows });
      return;
    }

    // The replay phones' /ws connections stay open all run, like phones on the hotspot.
    const runReplay = async (server, plan, n, expectBytes) => {
      const armed = phones.slice(0, n).map((p) => p.arm(plan, replayTimeoutMs(expectBytes, n)));
      const t0 = nowMs();
      await publish(server.port, nextImage());
      const results = await Promise.all(armed);
      const bad = results.flatMap((r) => r.statuses.filter((s) => s >= 400));
      if (bad.length) {
        throw new Error(`${server.label}: replayed requests answered ${[...new Set(bad)].join(', ')}`);
      }
      return {
        last: Math.max(...results.map((r) => r.doneAt)) - t0,
        first: Math.min(...results.map((r) => r.doneAt)) - t0,
        trigger: Math.max(...results.map((r) => r.triggeredAt)) - t0,
        bytesPerPhone: median(results.map((r) => r.bytes)),
      };
    };
    const connectPhones = async (port) => {
      for (const p of phones.splice(0)) {
        p.close();
      }
      for (let i = 0; i < PHONES; i++) {
        const p = new ReplayPhone(port);
        await p.connect();
        phones.push(p);
      }
    };

    // ------------------------------------------------ stackcast (the built service)
    const service = await startService(DIST, tempDir('stackcast-field-work-'), children);
    await publish(service.port, nextImage());
    monitor = new Monitor(service.port);
    await monitor.connect();
    await connectPhones(service.port);
    browser = await launchChromium();
    const stackcast = { phone: { firstLoad: [], update: [], shown: [], allBytes: [], one: [], many: [] }, desktop: { firstLoad: [], update: [], shown: [], allBytes: [], many: [] } };
    const recordings = { phone: [], desktop: [] };
    for (let u = 0; u < UPDATES; u++) {
      for (const device of ['phone', 'desktop']) {
        const r = stackcast[device];
        const page = await RecordedPage.open(browser, device);
        let plan;
        try {
          page.begin();
          await page.page.goto(`http://127.0.0.1:${service.port}/`);
          await page.waitShownAndIdle(0);
          const first = page.networkEntries();
          r.firstLoad.push(sum(first));
          const before = await page.shownCount();
          page.begin();
          const t0 = nowMs();
          await publish(service.port, nextImage());
          const { shownAt, hook } = await page.waitShownAndIdle(before);
          const entries = page.networkEntries();
          r.update.push(sum(entries));
          r.shown.push(shownAt - t0);
          r.allBytes.push(Math.max(...entries.map((e) => e.end)) - t0);
          recordings[device].push({ firstLoad: first.map(slim(t0)), update: entries.map(slim(t0)), hook, version: monitor.last?.version ?? null });
          plan = makePlan(entries, monitor.last?.version ?? null);
          log(`stackcast ${device} update ${u + 1}: ${entries.length} requests, ${kb(sum(entries))} KB, shown after ${sec(shownAt - t0)} s (first load ${kb(sum(first))} KB in ${first.length} requests)`);
        } finally {
          await page.close();
        }
        if (device === 'phone') {
          r.one.push((await runReplay(service, plan, 1, sum(plan.requests))).last);
        }
        const many = await runReplay(service, plan, PHONES, sum(plan.requests));
        r.many.push(many);
        log(`stackcast ${device} update ${u + 1}: last of ${PHONES} replaying phones after ${sec(many.last)} s (${kb(many.bytesPerPhone)} KB each)`);
      }
    }
    await browser.close();
    browser = null;
    monitor.close();

    // ------------------------------------------------ baseline: the whole JPEG, as ALS serves it
    const folder = tempDir('stackcast-field-als-');
    const preload = join(folder, 'preload.jpg');
    writeFileSync(preload, nextImage());
    const als = await startBaseline(folder, preload, children);
    await connectPhones(als.port);
    const alsPlan = { recordedVersion: null, requests: [{ path: '/web_image.jpg', deps: [], bytes: pool[0].length }] };
    const baseline = { one: [], many: [] };
    for (let u = 0; u < UPDATES; u++) {
      baseline.one.push((await runReplay(als, alsPlan, 1, pool[0].length)).last);
      const many = await runReplay(als, alsPlan, PHONES, pool[0].length);
      baseline.many.push(many);
      log(`baseline update ${u + 1}: last of ${PHONES} phones after ${sec(many.last)} s (${kb(many.bytesPerPhone)} KB each)`);
    }

    report({ sanity, stackcast, baseline, recordings, pool });
  } finally {
    await stopAll();
  }
}

const sum = (entries) => entries.reduce((s, e) => s + e.bytes, 0);
const kb = (bytes) => (bytes / 1024).toFixed(0);
const sec = (ms) => (ms / 1000).toFixed(2);
const slim = (t0) => (e) => ({ url: e.url, status: e.status, bytes: e.bytes, encoding: e.contentEncoding ?? null, startMs: +(e.start - t0).toFixed(1), endMs: +(e.end - t0).toFixed(1) });

async function startService(dist, workFolder, children) {
  const port = await freePort();
  const child = spawnNode([join(dist, 'main.js')], {
    label: 'stackcast',
    cwd: workFolder,
    env: { PORT: String(port), WORK_FOLDER: join(workFolder, 'work') },
    inheritEnv: false,
  });
  children.push(child);
  // 503 while starting: scopes and the rest answer only once it is 200.
  const isUp = () =>
    download(port, '/status', PUBLISHER_ADDRESS).then(
      (r) => r.status === 200,
      () => false,
    );
  await waitUntilUp(child, join(dist, 'main.js'), isUp, 100, 90_000);
  return { label: 'stackcast', port, child };
}

async function startBaseline(folder, preload, children) {
  const child = spawnNode([join(BENCH, 'servers/baseline.mjs'), folder, preload], { ipc: true, label: 'baseline', cwd: folder });
  children.push(child);
  const ready = await waitForMessage(child, 'ready', 30_000, 'baseline');
  return { label: 'baseline', port: ready.port, child };
}

/** One download of `bytes` over the shaped path and over the publisher's unshaped one. */
async function sanityCheck(bytes) {
  const server = createHttpServer((req, res) => res.writeHead(200, { 'Content-Length': bytes.length }).end(bytes));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address();
    const rate = (d) => ({ ...d, mbit: (d.bytes * 8) / d.seconds / 1e6 });
    const shaped = rate(await download(port, '/', '127.0.0.1'));
    const unshaped = rate(await download(port, '/', PUBLISHER_ADDRESS));
    return { shaped, unshaped };
  } finally {
    server.close();
  }
}

function report({ sanity, stackcast, baseline, recordings, pool }) {
  const s = stackcast.phone;
  const d = stackcast.desktop;
  const jpeg = median(pool.map((j) => j.length));
  const lastOf = (runs) => median(runs.map((m) => m.last));
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : '');
  const rows = [
    { figure: 'bytes per phone per update (KB)', phone: kb(median(s.update)), desktop: kb(median(d.update)), baseline: kb(median(baseline.many.map((m) => m.bytesPerPhone))), target: '≤ 300 KB (phone)' },
    { figure: 'first-load bytes (KB)', phone: kb(median(s.firstLoad)), desktop: kb(median(d.firstLoad)), baseline: `${kb(jpeg)} + page`, target: '' },
    { figure: 'one phone alone: all bytes (s)', phone: sec(median(s.one)), desktop: '', baseline: sec(median(baseline.one)), target: '' },
    { figure: 'real Chromium alone: image shown (s)', phone: sec(median(s.shown)), desktop: sec(median(d.shown)), baseline: '', target: '' },
    { figure: `last of ${PHONES} phones has the update (s, median)`, phone: sec(lastOf(s.many)), desktop: sec(lastOf(d.many)), baseline: sec(lastOf(baseline.many)), target: '≤ 4 s at 20 Mbit/s' },
  ].map((r, i) => ({ ...r, ratio: i === 0 ? ratio(median(baseline.many.map((m) => m.bytesPerPhone)), median(s.update)) : i === 4 ? ratio(lastOf(baseline.many), lastOf(s.many)) : '' }));
  const columns = [
    ['figure', 'figure', 'left'],
    ['phone', 'stackcast phone 390x844@3', 'right'],
    ['desktop', 'stackcast desktop 1920x1080', 'right'],
    ['baseline', 'ALS-style full JPEG', 'right'],
    ['ratio', 'baseline / phone', 'right'],
    ['target', 'target (issue 9)', 'left'],
  ];
  const table = renderTable(rows, columns);
  console.log(`\nField bench: ${RATE} Mbit/s shared link (tc tbf, MTU 1500), ${PHONES} phones, median of ${UPDATES} updates, stacks ${IMAGE.width}x${IMAGE.height} of ${kb(jpeg)} KB`);
  console.log(`sanity: a ${(pool[0].length / 1e6).toFixed(2)} MB download alone on the shaped link: ${sanity.shaped.mbit.toFixed(1)} Mbit/s\n`);
  console.log(table);
  console.log(`\nlast of ${PHONES}, each update (s): stackcast phone ${s.many.map((m) => sec(m.last)).join(' ')}; desktop ${d.many.map((m) => sec(m.last)).join(' ')}; baseline ${baseline.many.map((m) => sec(m.last)).join(' ')}`);
  const phoneUpdate = recordings.phone.at(-1)?.update ?? [];
  console.log(`what the phone fetched after its last publish: ${phoneUpdate.map((e) => `${new URL(e.url).pathname} (${kb(e.bytes)} KB)`).join(', ')}`);
  const config = { rateMbit: RATE, phones: PHONES, updates: UPDATES, quick: QUICK, image: IMAGE, dist: DIST };
  writeResults('field', { config, sanity, stackcast, baseline, recordings, rows });
}

function writeResults(name, data) {
  const out = join(BENCH, 'results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `${name}-${new Date().toISOString().replaceAll(':', '-').slice(0, 19)}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`\nresults: ${file}`);
}

// Last, so every helper above is initialised before the run starts.
if (flag('--inside')) {
  await inside();
} else {
  await outside();
}
