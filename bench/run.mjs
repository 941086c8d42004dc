#!/usr/bin/env node
// stackcast benchmark: fan-out, memory and image serving, against a minimal Node server
// (bench/servers/baseline.mjs) and nginx, in one run. See bench/README.md.
//
//   npm run bench                    full run (N = 100, 1000, 5000; K = 30), under 5 minutes
//   npm run bench -- --quick         smoke run (small N, few publishes), under a minute
//   options: --dist <dir> (or STACKCAST_BENCH_DIST) built output to test, default dist/
//            --own-build  compile src/ into bench/.build first and test that copy
//            --no-nginx   skip the nginx column
//            --no-wrk     steady run with the Node load generator even when wrk is installed
//            --only fanout|serving  run one phase
//            --no-big-sensors  skip the 12 / 61 MP JPEG and 12 MP FITS phase (bench/big-sensors.mjs, main against this build; never with --quick)
//            --pi         a Pi-class stand-in: the service pinned to one core (taskset -c 0),
//                         UV_THREADPOOL_SIZE=2 and SHARP_CONCURRENCY=1
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTestJpegs } from './lib/jpeg.mjs';
import { findNginx, startNginx } from './lib/nginx.mjs';
import { elapsedSeconds, flag, logger, option, tempFolders } from './lib/cli.mjs';
import { BENCH_LIMITS_ENV, cpuMs, freePort, hardFileLimit, ipcClient, nowMs, PI_PROFILE, sleep, sourceAddresses, spawnNode, statusUp, stopChild, waitForMessage, waitUntilUp } from './lib/proc.mjs';
import { median, slope, summarizeFanout } from './lib/stats.mjs';
import { renderTable } from './lib/table.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');

const QUICK = flag('--quick');
/** The small-computer profile (issue 23): one core, two libuv threads, one libvips thread. */
const PI = flag('--pi');
/** `--only fanout` or `--only serving`: one phase (for work on one figure; not a full report). */
const ONLY = option('--only');
const CONFIG = QUICK
  ? { ns: [50, 200], k: 5, minK: 3, fanoutBudgetS: 30, bursts: [20, 50], burstReps: 2, steadySeconds: 2, wrkConnections: 20, gapMs: 15, warmupPublishes: 3 }
  : { ns: [100, 1000, 5000], k: 30, minK: 10, fanoutBudgetS: 160, bursts: [50, 200], burstReps: 3, steadySeconds: 10, wrkConnections: 50, gapMs: 25, warmupPublishes: 20 };
/** Figures the issue's targets are stated at; a quick run checks its largest N instead. */
const TARGET_NS = QUICK ? [CONFIG.ns.at(-1)] : [1000, 5000];
const PUBLISH_TARGET_N = QUICK ? CONFIG.ns.at(-1) : 1000;
const OP_TIMEOUT_MS = 5000;
/** Publish -> new_image budget for a 12 MP JPEG, pyramid included (issue 9). */
const PUBLISH_BUDGET_MS = 500;
const RUN_DEADLINE_MS = QUICK ? 120_000 : 330_000;

const log = logger('bench');
const children = [];
const { tempDir, removeTemps } = tempFolders();

function checkDeadline(what) {
  if (elapsedSeconds() * 1000 > RUN_DEADLINE_MS) {
    throw new Error(`time budget of ${RUN_DEADLINE_MS / 1000} s exceeded before ${what}`);
  }
}

function distFolder() {
  if (flag('--own-build')) {
    const out = join(BENCH, '.build');
    log('building src/ into bench/.build');
    rmSync(out, { recursive: true, force: true });
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json'), '--outDir', out], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    if (tsc.status !== 0) {
      throw new Error('tsc failed');
    }
    cpSync(join(ROOT, 'src/modules/web-assets/viewer'), join(out, 'modules/web-assets/viewer'), { recursive: true });
    return out;
  }
  return resolve(ROOT, option('--dist') ?? process.env.STACKCAST_BENCH_DIST ?? 'dist');
}

// ---------------------------------------------------------------- servers under test

async function startIpcServer(label, script, argv) {
  // --expose-gc: memory is read after a forced collection, so garbage is not counted.
  // --pi pins stackcast only: the baseline is the yardstick, not the machine under test.
  const pi = PI && label.startsWith('stackcast') ? PI_PROFILE : { prefix: [], env: {} };
  const child = spawnNode(['--expose-gc', script, ...argv], { ipc: true, label, cwd: tempDir('stackcast-bench-cwd-'), env: pi.env, prefix: pi.prefix });
  children.push(child);
  const ready = await waitForMessage(child, 'ready', 30_000, label);
  return { label, child, port: ready.port, pids: () => [child.pid], call: ipcClient(child, label) };
}


async function startMainJs(dist, workFolder) {
  const port = await freePort();
  // A clean environment and a temp cwd: no .env or CONTROL_TOKEN of the machine leaks in.
  const child = spawnNode([join(dist, 'main.js')], {
    label: 'stackcast',
    cwd: tempDir('stackcast-bench-cwd-'),
    // The limits sized for a star party are raised on purpose: thousands of viewers from 3 addresses.
    env: { PORT: String(port), WORK_FOLDER: workFolder, ...BENCH_LIMITS_ENV, ...(PI ? PI_PROFILE.env : {}) },
    inheritEnv: false,
    prefix: PI ? PI_PROFILE.prefix : [],
  });
  children.push(child);
  await waitUntilUp(child, join(dist, 'main.js'), () => statusUp(port), 50);
  return { label: 'stackcast', child, port, pids: () => [child.pid] };
}

/** PUT /api/image, as a stacker would; resolves once the server answered. */
async function putImage(port, jpeg) {
  const res = await fetch(`http://127.0.0.1:${port}/api/image`, {
    method: 'PUT',
    headers: { 'Content-Type': 'image/jpeg' },
    body: jpeg,
  });
  const text = await res.text();
  if (res.status !== 200) {
    throw new Error(`PUT /api/image on ${port}: ${res.status} ${text}`);
  }
}

// ---------------------------------------------------------------- measurements

async function fanoutPhase({ lg, sources, targets, images }) {
  const results = {}; // results[key][n] = { ops: [...] }
  // memory[label] = { idle, at: { [n]: { idle, after } } }, each { rss, live } in KiB after
  // a forced GC; live = V8 heap in use + external (Buffers, zlib contexts).
  const memory = {};
  const memoryTargets = targets.filter((t) => t.memory);
  const afterGc = async (t) => {
    const { memory: m } = await t.server.call('memory');
    return { rss: m.rss / 1024, live: (m.heapUsed + m.external) / 1024 };
  };
  for (const t of memoryTargets) {
    // The image pipeline's RSS grows over its first publishes (about 100 MB, flat after
    // ~15): warmed up before the first reading, so the slope over N counts viewers only.
    for (let i = 0; i < CONFIG.warmupPublishes; i++) {
      await t.server.call('publish');
    }
    memory[t.server.label] = { idle: await afterGc(t), at: {} };
  }
  const allOps = targets.flatMap((t) => t.modes.map((mode) => ({ t, mode, key: `${t.name}:${mode}` })));
  // Bare broadcasts first at each N, so "after a broadcast" is read before any image churn.
  const groupsOfOps = [allOps.filter((o) => o.mode === 'broadcast'), allOps.filter((o) => o.mode !== 'broadcast')];
  let imageTurn = 0;
  const phaseDeadline = Date.now() + CONFIG.fanoutBudgetS * 1000;

  const runOp = async ({ t, mode, key }, n) => {
    await lg('arm', { group: t.name, timeoutMs: OP_TIMEOUT_MS });
    const cpu0 = cpuMs(t.server.pids());
    let t0;
    let tb = NaN;
    let tc = NaN;
    if (mode === 'put') {
      t0 = nowMs();
      await putImage(t.server.port, images[imageTurn++ % images.length]);
    } else {
      ({ t0, tb, tc = NaN } = await t.server.call(mode));
    }
    const got = await lg('wait', { group: t.name }, OP_TIMEOUT_MS + 10_000);
    const cpu = cpuMs(t.server.pids()) - cpu0;
    results[key][n].ops.push({ n: got.n, latencies: got.times.map((x) => x - t0), cpu, beforeBroadcast: tb - t0, checked: tc - t0 });
    await sleep(CONFIG.gapMs);
  };

  for (const n of CONFIG.ns) {
    checkDeadline(`fan-out at N=${n}`);
    for (const t of targets) {
      const r = await lg('connect', { group: t.name, url: `ws://127.0.0.1:${t.server.port}/ws`, total: n, sources }, 120_000);
      log(`${t.name}: ${r.open} viewers open (${r.failed} failed, ${Math.round(r.ms)} ms)`);
      if (r.open < n) {
        throw new Error(`${t.name}: only ${r.open} of ${n} viewers could connect`);
      }
    }
    await sleep(QUICK ? 200 : 1000);
    for (const t of memoryTargets) {
      memory[t.server.label].at[n] = { idle: await afterGc(t) };
    }
    for (const { key } of allOps) {
      (results[key] ??= {})[n] = { ops: [] };
    }
    for (const [g, ops] of groupsOfOps.entries()) {
      for (let k = 0; k < CONFIG.k; k++) {
        // On a machine busier than planned, fewer publishes rather than a blown budget.
        if (k >= CONFIG.minK && Date.now() > phaseDeadline) {
          log(`N=${n}: time budget of the fan-out phase spent, K cut to ${k}`);
          break;
        }
        // Interleaved, with a rotating start, so a noisy neighbour hits every server alike.
        for (let j = 0; j < ops.length; j++) {
          await runOp(ops[(j + k) % ops.length], n);
        }
      }
      if (g === 0) {
        for (const t of memoryTargets) {
          memory[t.server.label].at[n].after = await afterGc(t);
        }
      }
    }
    const line = allOps.map(({ key }) => `${key} ${summarizeFanout(results[key][n].ops).last.toFixed(1)}`).join(', ');
    log(`N=${n}: last client (ms): ${line}`);
  }
  for (const t of targets) {
    await lg('closeGroup', { group: t.name }, 30_000);
  }
  const summary = {};
  for (const [key, byN] of Object.entries(results)) {
    summary[key] = Object.fromEntries(Object.entries(byN).map(([n, r]) => [n, summarizeFanout(r.ops)]));
  }
  return { summary, memory };
}

function hasWrk() {
  if (flag('--no-wrk')) {
    return false;
  }
  return spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error === undefined;
}

function parseWrk(out) {
  const m = /(\d+) requests in ([\d.]+)(ms|s|m|h), ([\d.]+)([KMGT]?B) read/.exec(out);
  if (!m) {
    throw new Error(`cannot read wrk's output:\n${out}`);
  }
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[m[3]];
  const bytes = Number(m[4]) * { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[m[5]];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(m[1]),
    seconds: Number(m[2]) * unit,
    bytes,
    errors: (non2xx ? Number(non2xx[1]) : 0) + (sockErr ? sockErr.slice(1).reduce((s, v) => s + Number(v), 0) : 0),
  };
}

function runWrk(url, connections, seconds) {
  return new Promise((resolveRun, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`wrk exited with ${code}:\n${out}`));
        return;
      }
      try {
        resolveRun(parseWrk(out));
      } catch (err) {
        reject(err);
      }
    });
  });
}

async function servingPhase({ lg, sources, servers, imageBytes, publish }) {
  const useWrk = hasWrk();
  if (!useWrk) {
    log('wrk is not installed: the steady run uses the Node load generator (a slower client)');
  }
  // The steady run is cut in slices taken in turn, so a noisy neighbour (other jobs on
  // the same two cores) weighs on every server alike.
  const sliceSeconds = Math.min(2, CONFIG.steadySeconds);
  const slices = Math.max(1, Math.round(CONFIG.steadySeconds / sliceSeconds));
  const sums = Object.fromEntries(servers.map((s) => [s.label, { requests: 0, errors: 0, seconds: 0, cpu: 0, bytes: 0 }]));
  for (let i = 0; i < slices; i++) {
    checkDeadline('the steady run');
    for (const s of servers) {
      const url = `http://127.0.0.1:${s.port}${s.path}`;
      const cpu0 = cpuMs(s.pids());
      const r = useWrk
        ? await runWrk(url, CONFIG.wrkConnections, sliceSeconds)
        : await lg('steady', { url, connections: CONFIG.wrkConnections, seconds: sliceSeconds, sources }, (sliceSeconds + 30) * 1000);
      const sum = sums[s.label];
      sum.cpu += cpuMs(s.pids()) - cpu0;
      sum.requests += r.requests;
      sum.errors += r.errors;
      sum.seconds += r.seconds;
      // Bytes the client really read when it says (wrk), else answers × image size.
      sum.bytes += r.bytes ?? (r.requests - r.errors) * imageBytes;
    }
  }
  const steady = {};
  for (const s of servers) {
    const sum = sums[s.label];
    steady[s.label] = {
      requests: sum.requests,
      errors: sum.errors,
      seconds: sum.seconds,
      reqPerSec: sum.requests / sum.seconds,
      mbPerSec: sum.bytes / sum.seconds / 1e6,
      // Per image answered: errors (non-2xx, socket) do not count as served.
      cpuMsPerImage: sum.cpu / Math.max(1, sum.requests - sum.errors),
      cpuShare: sum.cpu / (sum.seconds * 1000),
      client: useWrk ? 'wrk' : 'node',
    };
    log(`steady ${s.label}: ${steady[s.label].mbPerSec.toFixed(0)} MB/s, ${steady[s.label].cpuMsPerImage.toFixed(3)} ms CPU/image`);
  }
  const bursts = {};
  for (const c of CONFIG.bursts) {
    const runs = Object.fromEntries(servers.map((s) => [s.label, []]));
    for (let rep = 0; rep < CONFIG.burstReps; rep++) {
      checkDeadline(`burst of ${c}`);
      for (const s of servers) {
        await publish(s, rep);
        await sleep(CONFIG.gapMs);
        const cpu0 = cpuMs(s.pids());
        const r = await lg('burst', { url: `http://127.0.0.1:${s.port}${s.path}`, clients: c, sources }, 60_000);
        const cpu = cpuMs(s.pids()) - cpu0;
        const allMs = Math.max(...r.ends) - r.start;
        runs[s.label].push({ ok: r.ok, failed: r.failed, allMs, mbPerSec: r.bytes / allMs / 1e3, cpuMsPerImage: cpu / Math.max(1, r.ok) });
      }
    }
    bursts[c] = Object.fromEntries(
      Object.entries(runs).map(([label, rs]) => [
        label,
        {
          allMs: median(rs.map((r) => r.allMs)),
          mbPerSec: median(rs.map((r) => r.mbPerSec)),
          cpuMsPerImage: median(rs.map((r) => r.cpuMsPerImage)),
          failed: rs.reduce((s, r) => s + r.failed, 0),
        },
      ]),
    );
    log(`burst ${c}: ${Object.entries(bursts[c]).map(([l, b]) => `${l} ${b.allMs.toFixed(0)} ms`).join(', ')}`);
  }
  return { steady, bursts, client: useWrk ? 'wrk' : 'node' };
}

/** ETag / 304 / no-cache on the hot path, checked once: a fast wrong answer is no answer. */
async function checkConditional(port) {
  const url = `http://127.0.0.1:${port}/web_image.jpg`;
  const first = await fetch(url);
  await first.arrayBuffer();
  const etag = first.headers.get('etag');
  const again = await fetch(url, { headers: { 'If-None-Match': etag ?? '' } });
  await again.arrayBuffer();
  return {
    ok: first.status === 200 && !!etag && again.status === 304 && first.headers.get('cache-control') === 'no-cache',
    status: first.status,
    etag,
    conditionalStatus: again.status,
  };
}

// ---------------------------------------------------------------- report

function buildReport({ fanout, serving, nginxNote }) {
  const f = fanout?.summary ?? {};
  const rows = [];
  const ns = CONFIG.ns;
  const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN);
  const verdicts = [];
  const verdict = (ok, text) => {
    verdicts.push({ ok, text });
    return `${ok ? 'met' : 'NOT met'}: ${text}`;
  };
  const add = (section, figure, n, sc, base, { digits = 1, unit = '', nginx, floor, target = '' } = {}) =>
    rows.push({
      section,
      figure: unit ? `${figure} (${unit})` : figure,
      n: n === undefined ? '' : String(n),
      stackcast: fmt(sc, digits),
      baseline: fmt(base, digits),
      ratio: fmt(ratio(sc, base), 2),
      floor: floor === undefined ? '' : fmt(floor, digits),
      nginx: nginx === undefined ? '' : fmt(nginx, digits),
      vsNginx: nginx === undefined ? '' : fmt(ratio(sc, nginx), 2),
      target,
    });

  const paths = [
    ['fan-out: broadcast only', 'stackcast-embedded:broadcast', 'baseline:broadcast'],
    ['publish 3 MB in process (ImageNotifier.publish, default verify: full)', 'stackcast-embedded:publish', 'baseline:publish'],
    ['publish 3 MB in process (ImageNotifier.publish, verify: header)', 'stackcast-embedded:publish-header', 'baseline:publish'],
    ['publish 3 MB over PUT /api/image', 'stackcast:put', 'baseline:put'],
  ];
  for (const [section, scKey, baseKey] of paths) {
    if (!f[scKey] || !f[baseKey]) {
      continue;
    }
    for (const n of ns) {
      const sc = f[scKey]?.[n];
      const base = f[baseKey]?.[n];
      if (!sc || !base) {
        continue;
      }
      const onTarget = scKey.endsWith(':broadcast') && TARGET_NS.includes(n);
      add(section, 'last client', n, sc.last, base.last, {
        unit: 'ms',
        target: onTarget ? `≤1.1×: ${ratio(sc.last, base.last) <= 1.1 ? 'met' : 'NOT met'}` : '',
      });
      add(section, 'p50', n, sc.p50, base.p50, { unit: 'ms' });
      add(section, 'p99', n, sc.p99, base.p99, { unit: 'ms' });
      add(section, 'max', n, sc.max, base.max, { unit: 'ms' });
      add(section, 'delivered', n, sc.delivered * 100, base.delivered * 100, { unit: '%' });
      add(section, 'server CPU per broadcast', n, sc.cpu, base.cpu, {
        unit: 'ms',
        digits: 2,
        target: onTarget ? `≤1.1×: ${ratio(sc.cpu, base.cpu) <= 1.1 ? 'met' : 'NOT met'}` : '',
      });
      if (!scKey.endsWith(':broadcast')) {
        if (Number.isFinite(sc.beforeBroadcast)) {
          add(section, 'call → broadcast starts', n, sc.beforeBroadcast, base.beforeBroadcast, { unit: 'ms', digits: 2 });
        }
        if (Number.isFinite(sc.checked)) {
          add(section, '  of which call → image checked', n, sc.checked, NaN, { unit: 'ms', digits: 2 });
        }
      }
    }
    const lastSlope = (key) => slope(ns.map((n) => [n, f[key]?.[n]?.last])) * 1000;
    const cpuSlope = (key) => slope(ns.map((n) => [n, f[key]?.[n]?.cpu])) * 1000;
    add(section, 'slope: last client', undefined, lastSlope(scKey), lastSlope(baseKey), { unit: 'µs/client', digits: 1 });
    add(section, 'slope: CPU per broadcast', undefined, cpuSlope(scKey), cpuSlope(baseKey), { unit: 'µs/client', digits: 1 });
  }

  // Target 1, stated over both N; target 4 at N=1000.
  for (const n of TARGET_NS) {
    const sc = f['stackcast-embedded:broadcast']?.[n];
    const base = f['baseline:broadcast']?.[n];
    if (sc && base) {
      verdict(ratio(sc.last, base.last) <= 1.1, `fan-out last client at N=${n}: ${fmt(sc.last)} ms vs ${fmt(base.last)} ms (${fmt(ratio(sc.last, base.last), 2)}×, ≤1.1×)`);
      verdict(ratio(sc.cpu, base.cpu) <= 1.1, `server CPU per broadcast at N=${n}: ${fmt(sc.cpu, 2)} ms vs ${fmt(base.cpu, 2)} ms (${fmt(ratio(sc.cpu, base.cpu), 2)}×, ≤1.1×)`);
    }
  }
  for (const [mode, label] of [
    ['publish', 'verify: full (default)'],
    ['publish-header', 'verify: header'],
  ]) {
    const pub = f[`stackcast-embedded:${mode}`]?.[PUBLISH_TARGET_N];
    const base = f['baseline:broadcast']?.[PUBLISH_TARGET_N];
    if (pub && base) {
      // A publish now cuts the version's Deep Zoom pyramid before new_image (issue 9's budget: 500 ms).
      const limit = base.last + PUBLISH_BUDGET_MS;
      add(`publish 3 MB in process, ${label}`, `last client vs baseline fan-out + ${PUBLISH_BUDGET_MS} ms`, PUBLISH_TARGET_N, pub.last, limit, {
        unit: 'ms',
        target: `≤ baseline+${PUBLISH_BUDGET_MS}: ${pub.last <= limit ? 'met' : 'NOT met'}`,
      });
      verdict(pub.last <= limit, `3 MB publish (${label}, pyramid included) to the last of ${PUBLISH_TARGET_N}: ${fmt(pub.last)} ms vs baseline fan-out ${fmt(base.last)} ms + ${PUBLISH_BUDGET_MS} ms = ${fmt(limit)} ms`);
    }
  }

  // Memory, after a forced GC: stackcast (the built module, embedded) against the baseline.
  const mem = fanout?.memory ?? {};
  const sc = mem['stackcast-embedded'];
  const base = mem.baseline;
  if (sc && base) {
    const memSection = `memory (after ${CONFIG.warmupPublishes} warm-up publishes and a forced GC; viewers idle, then after K bare broadcasts)`;
    add(memSection, 'RSS idle', 0, sc.idle.rss / 1024, base.idle.rss / 1024, { unit: 'MB' });
    for (const n of ns) {
      add(memSection, 'RSS with idle viewers', n, sc.at[n].idle.rss / 1024, base.at[n].idle.rss / 1024, { unit: 'MB' });
      add(memSection, 'RSS after K broadcasts', n, sc.at[n].after.rss / 1024, base.at[n].after.rss / 1024, { unit: 'MB' });
    }
    const perConn = (m) => slope(ns.map((n) => [n, m.at[n].idle.rss]));
    const kbSc = perConn(sc);
    const kbBase = perConn(base);
    add(memSection, 'slope: RSS per connection', undefined, kbSc, kbBase, { unit: 'KB', target: `≤1.2×: ${ratio(kbSc, kbBase) <= 1.2 ? 'met' : 'NOT met'}` });
    verdict(ratio(kbSc, kbBase) <= 1.2, `memory per connection: ${fmt(kbSc)} KB vs ${fmt(kbBase)} KB (${fmt(ratio(kbSc, kbBase), 2)}×, ≤1.2×)`);
    const liveSlope = (m) => slope(ns.map((n) => [n, m.at[n].idle.live]));
    add(memSection, 'slope: live heap + external per connection', undefined, liveSlope(sc), liveSlope(base), { unit: 'KB' });
    const nMax = ns.at(-1);
    const growth = (m, kind) => (m.at[nMax].after[kind] - m.at[nMax].idle[kind]) / nMax;
    add(memSection, 'RSS growth after broadcasts, per connection', nMax, growth(sc, 'rss'), growth(base, 'rss'), { unit: 'KB', digits: 2 });
    // A per-connection compressor keeps tens of KB per client alive; what a broadcast
    // leaves behind should be nothing per client. RSS also moves with V8's young
    // generation resizing, so the verdict is on what stays alive.
    add(memSection, 'live growth after broadcasts, per connection', nMax, growth(sc, 'live'), growth(base, 'live'), {
      unit: 'KB',
      digits: 2,
      target: `<0.5 KB: ${growth(sc, 'live') < 0.5 ? 'met' : 'NOT met'}`,
    });
    verdict(
      growth(sc, 'live') < 0.5,
      `no growth after broadcasts: ${fmt(growth(sc, 'live'), 2)} KB per connection left alive at N=${nMax} (RSS ${fmt(growth(sc, 'rss'), 2)} KB; baseline ${fmt(growth(base, 'live'), 2)} / ${fmt(growth(base, 'rss'), 2)} KB)`,
    );
  }

  if (!serving) {
    return { rows, verdicts };
  }
  // Serving: stackcast (main.js, image in memory) vs the baseline (stream from disk) vs nginx.
  const st = serving.steady;
  const ng = st.nginx;
  const scS = st.stackcast;
  const baseS = st.baseline;
  const sec = `serving web_image.jpg: steady, ${CONFIG.steadySeconds} s per server in slices taken in turn, ${CONFIG.wrkConnections} keep-alive conns (${serving.client})`;
  add(sec, 'throughput', undefined, scS.mbPerSec, baseS.mbPerSec, {
    unit: 'MB/s',
    digits: 0,
    floor: st.floor?.mbPerSec,
    nginx: ng?.mbPerSec,
    target: ng ? `≥0.9× nginx: ${ratio(scS.mbPerSec, ng.mbPerSec) >= 0.9 ? 'met' : 'NOT met'}` : nginxNote,
  });
  add(sec, 'requests', undefined, scS.reqPerSec, baseS.reqPerSec, { unit: '/s', digits: 0, floor: st.floor?.reqPerSec, nginx: ng?.reqPerSec });
  add(sec, 'server CPU per image', undefined, scS.cpuMsPerImage, baseS.cpuMsPerImage, {
    unit: 'ms',
    digits: 3,
    floor: st.floor?.cpuMsPerImage,
    nginx: ng?.cpuMsPerImage,
    target: ng ? `≤2× nginx: ${ratio(scS.cpuMsPerImage, ng.cpuMsPerImage) <= 2 ? 'met' : 'NOT met'}` : nginxNote,
  });
  add(sec, 'server CPU busy', undefined, scS.cpuShare * 100, baseS.cpuShare * 100, { unit: '% of a core', digits: 0, floor: st.floor ? st.floor.cpuShare * 100 : undefined, nginx: ng ? ng.cpuShare * 100 : undefined });
  add(sec, 'errors', undefined, scS.errors, baseS.errors, { digits: 0, floor: st.floor?.errors, nginx: ng?.errors });
  if (!ng) {
    verdicts.push({ ok: null, text: `serving against nginx: ${nginxNote}` });
  }
  if (ng) {
    // When no server is near a full core, the client (and loopback) set the pace: the
    // throughput ratio then says that both keep up, not which one is faster.
    const clientBound = Math.max(scS.cpuShare, ng.cpuShare) < 0.9;
    verdict(
      ratio(scS.mbPerSec, ng.mbPerSec) >= 0.9,
      `steady serving throughput: ${fmt(scS.mbPerSec, 0)} MB/s vs nginx ${fmt(ng.mbPerSec, 0)} MB/s (${fmt(ratio(scS.mbPerSec, ng.mbPerSec), 2)}×, ≥0.9×)` +
        (clientBound ? `; client-bound: stackcast used ${fmt(scS.cpuShare * 100, 0)} % of a core, nginx ${fmt(ng.cpuShare * 100, 0)} %` : ''),
    );
    verdict(ratio(scS.cpuMsPerImage, ng.cpuMsPerImage) <= 2, `steady serving, CPU per image: ${fmt(scS.cpuMsPerImage, 3)} ms vs nginx ${fmt(ng.cpuMsPerImage, 3)} ms (${fmt(ratio(scS.cpuMsPerImage, ng.cpuMsPerImage), 2)}×, ≤2×)`);
  }
  for (const [c, b] of Object.entries(serving.bursts)) {
    const s2 = `serving: burst of ${c} phones, new connections, after a publish (median of ${CONFIG.burstReps})`;
    const ng2 = b.nginx;
    add(s2, 'all phones have the image', c, b.stackcast.allMs, b.baseline.allMs, { unit: 'ms', digits: 0, floor: b.floor?.allMs, nginx: ng2?.allMs });
    add(s2, 'throughput', c, b.stackcast.mbPerSec, b.baseline.mbPerSec, {
      unit: 'MB/s',
      digits: 0,
      floor: b.floor?.mbPerSec,
      nginx: ng2?.mbPerSec,
      target: ng2 ? `≥0.9× nginx: ${ratio(b.stackcast.mbPerSec, ng2.mbPerSec) >= 0.9 ? 'met' : 'NOT met'}` : '',
    });
    add(s2, 'server CPU per image', c, b.stackcast.cpuMsPerImage, b.baseline.cpuMsPerImage, {
      unit: 'ms',
      digits: 3,
      floor: b.floor?.cpuMsPerImage,
      nginx: ng2?.cpuMsPerImage,
      target: ng2 ? `≤2× nginx: ${ratio(b.stackcast.cpuMsPerImage, ng2.cpuMsPerImage) <= 2 ? 'met' : 'NOT met'}` : '',
    });
    add(s2, 'failed fetches', c, b.stackcast.failed, b.baseline.failed, { digits: 0, floor: b.floor?.failed, nginx: ng2?.failed });
    if (ng2) {
      verdict(
        ratio(b.stackcast.mbPerSec, ng2.mbPerSec) >= 0.9,
        `burst of ${c}, throughput: ${fmt(b.stackcast.mbPerSec, 0)} MB/s vs nginx ${fmt(ng2.mbPerSec, 0)} MB/s (${fmt(ratio(b.stackcast.mbPerSec, ng2.mbPerSec), 2)}×, ≥0.9×)`,
      );
      verdict(
        ratio(b.stackcast.cpuMsPerImage, ng2.cpuMsPerImage) <= 2,
        `burst of ${c}, CPU per image: ${fmt(b.stackcast.cpuMsPerImage, 3)} ms vs nginx ${fmt(ng2.cpuMsPerImage, 3)} ms (${fmt(ratio(b.stackcast.cpuMsPerImage, ng2.cpuMsPerImage), 2)}×, ≤2×)`,
      );
    }
  }
  return { rows, verdicts };
}

/** Says where the time budget cut K, so no figure passes for more than it is. */
function kCutNote(fanout) {
  const cuts = [];
  for (const [key, byN] of Object.entries(fanout?.summary ?? {})) {
    for (const [n, sm] of Object.entries(byN)) {
      if (sm.ops < CONFIG.k) {
        cuts.push(`${key} N=${n}: K=${sm.ops}`);
      }
    }
  }
  return cuts.length ? `fewer publishes than K=${CONFIG.k} (time budget): ${cuts.join(', ')}\n` : '';
}

// ---------------------------------------------------------------- main

async function main() {
  log(`${QUICK ? 'quick' : 'full'} run: N = ${CONFIG.ns.join(', ')}; K = ${CONFIG.k}; ${cpus().length} CPU(s); open files ${hardFileLimit()}`);
  if (PI) {
    log(`--pi: stackcast (main.js and embedded) runs as ${PI_PROFILE.prefix.join(' ')} with ${Object.entries(PI_PROFILE.env).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  // The load generator holds every group's viewers at once (three servers) plus a burst.
  const needed = CONFIG.ns.at(-1) * 3 + Math.max(...CONFIG.bursts) + 200;
  if (hardFileLimit() < needed) {
    throw new Error(`the open-files hard limit (${hardFileLimit()}) is below the ${needed} this run needs; raise it (ulimit -Hn) or use --quick`);
  }
  const dist = distFolder();
  for (const file of ['index.js', 'main.js', 'gateway/broadcast.service.js']) {
    if (!existsSync(join(dist, file))) {
      throw new Error(`${join(dist, file)} is missing: run \`npm run build\` (or pass --own-build)`);
    }
  }
  log(`service under test: ${dist}`);

  const { images, width, height } = await makeTestJpegs();
  const imageDir = tempDir('stackcast-bench-img-');
  const imageFiles = images.map((img, i) => {
    const p = join(imageDir, `test-${i}.jpg`);
    writeFileSync(p, img);
    return p;
  });
  log(`test images: ${width}×${height}, ${images.map((b) => b.length).join(' / ')} bytes`);
  const sources = await sourceAddresses();

  const lgChild = spawnNode([join(BENCH, 'loadgen.mjs')], { ipc: true, label: 'loadgen', cwd: ROOT });
  children.push(lgChild);
  await waitForMessage(lgChild, 'ready', 15_000, 'loadgen');
  const lg = ipcClient(lgChild, 'loadgen');

  const baseline = await startIpcServer('baseline', join(BENCH, 'servers/baseline.mjs'), [tempDir('stackcast-bench-base-'), imageFiles[0]]);
  const embedded = await startIpcServer('stackcast-embedded', join(BENCH, 'servers/stackcast-embedded.mjs'), [dist, tempDir('stackcast-bench-emb-'), imageFiles[0]]);
  const scWork = tempDir('stackcast-bench-main-');
  const stackcast = await startMainJs(dist, scWork);
  await putImage(stackcast.port, images[0]);
  await putImage(baseline.port, images[0]);
  log(`servers: baseline :${baseline.port}, stackcast-embedded :${embedded.port}, stackcast (main.js) :${stackcast.port}`);
  await sleep(QUICK ? 300 : 1000);

  const fanout =
    ONLY === 'serving'
      ? undefined
      : await fanoutPhase({
          lg,
          sources,
          images,
          targets: [
            { name: 'baseline', server: baseline, modes: ['broadcast', 'publish', 'put'], memory: true },
            { name: 'stackcast-embedded', server: embedded, modes: ['broadcast', 'publish', 'publish-header'], memory: true },
            { name: 'stackcast', server: stackcast, modes: ['put'] },
          ],
        });
  await stopChild(embedded.child);

  const conditional = await checkConditional(stackcast.port);
  log(`ETag/304 check on stackcast: ${conditional.ok ? 'ok' : 'FAILED'} (${conditional.status}, ${conditional.conditionalStatus})`);

  let nginx;
  let nginxNote = '';
  const found = flag('--no-nginx') ? undefined : findNginx();
  if (found) {
    try {
      // Same folder, same file: nginx serves the web_image.jpg stackcast wrote.
      const nginxPort = await freePort();
      const ng = await startNginx({ bin: found.bin, prefix: tempDir('stackcast-bench-nginx-'), root: scWork, port: nginxPort });
      children.push(ng.child);
      nginx = { label: 'nginx', child: ng.child, pids: ng.pids, port: nginxPort };
    } catch (err) {
      nginxNote = `nginx failed to start: ${err.message.split('\n')[0]}`;
      nginx = undefined;
    }
  } else {
    nginxNote = flag('--no-nginx') ? 'nginx skipped (--no-nginx)' : 'nginx not installed (apt-get install nginx-light): column skipped';
  }
  if (nginxNote) {
    log(nginxNote);
  }
  const servers = [
    { label: 'stackcast', port: stackcast.port, pids: stackcast.pids, path: '/web_image.jpg' },
    { label: 'baseline', port: baseline.port, pids: baseline.pids, path: '/web_image.jpg' },
    // What any Node server pays: node:http answering res.end(buffer) from memory.
    { label: 'floor', port: baseline.port, pids: baseline.pids, path: '/mem/web_image.jpg' },
    ...(nginx ? [{ label: 'nginx', port: nginx.port, pids: nginx.pids, path: '/web_image.jpg' }] : []),
  ];
  const serving =
    ONLY === 'fanout'
      ? undefined
      : await servingPhase({
          lg,
          sources,
          servers,
          imageBytes: images[0].length,
          publish: (s, rep) => putImage(s.label === 'baseline' || s.label === 'floor' ? baseline.port : stackcast.port, images[rep % images.length]),
        });

  const { rows, verdicts } = buildReport({ fanout, serving, nginxNote });
  const table = renderTable(rows);
  process.stdout.write(
    `\nstackcast bench (${QUICK ? 'quick' : 'full'}): ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, ` +
      `${images[0].length} B JPEG, K=${CONFIG.k}, clients offer permessage-deflate, ${sources.length} source address(es)\n` +
      `stackcast: PUT and serving rows: node <dist>/main.js; broadcast-only, in-process publish and memory rows: the built module embedded in a Nest app\n` +
      `baseline: minimal ws + node:http server streaming the file from disk; node floor: the same process answering res.end(buffer) from memory\n` +
      `ratio = stackcast / baseline; vs nginx = stackcast / nginx; latencies from the publish call to each client's receipt; medians over K\n\n` +
      `${table}\n\n` +
      `ETag/304/no-cache on web_image.jpg: ${conditional.ok ? 'ok' : 'FAILED'}\n` +
      kCutNote(fanout) +
      `targets${QUICK ? ' (quick run: checked at its largest N only, indicative)' : ''}:\n` +
      verdicts.map((v) => `  ${v.ok === null ? '[skipped]' : v.ok ? '[met]    ' : '[NOT met]'} ${v.text}`).join('\n') +
      `\n`,
  );

  const resultsDir = join(BENCH, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `bench-${QUICK ? 'quick-' : ''}${new Date().toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        when: new Date().toISOString(),
        mode: QUICK ? 'quick' : 'full',
        machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, nginx: found?.version ?? null },
        config: CONFIG,
        image: { bytes: images.map((b) => b.length), width, height },
        sources,
        dist,
        fanout,
        serving,
        conditional,
        rows,
        verdicts,
        durationSeconds: elapsedSeconds(),
      },
      null,
      2,
    ),
  );
  log(`results: ${file} (${elapsedSeconds().toFixed(0)} s in all)`);
  if (!ONLY && !QUICK && !flag('--no-big-sensors')) {
    // Issue 23's figures: 12 and 61 MP publishes, main against this build (bench/big-sensors.mjs).
    const big = spawnSync(process.execPath, [join(BENCH, 'big-sensors.mjs'), ...(QUICK ? ['--quick'] : []), '--dist', dist], { stdio: 'inherit' });
    if (big.status !== 0) {
      throw new Error(`bench/big-sensors.mjs failed (${big.status})`);
    }
  }
}

async function cleanup() {
  for (const child of children.splice(0).reverse()) {
    await stopChild(child);
  }
  removeTemps();
}

// Ctrl-C: end what this run started (node dist/main.js and nginx have no IPC channel to notice).
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping the servers it started\n`);
    void cleanup().then(() => process.exit(130));
  });
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err) => {
    process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
    await cleanup();
    process.exit(1);
  },
);
