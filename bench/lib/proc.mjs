// Child processes of the bench, and what the bench reads about them from /proc.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Open-files limit asked for every child: the hard limit, whatever it is. */
export function hardFileLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    return hard === 'unlimited' ? 1_048_576 : Number(hard) || 1024;
  } catch {
    return 1024;
  }
}

/**
 * Spawns `node <args>` with the open-files limit raised to the hard limit (Node has no
 * setrlimit): `bash -c 'ulimit -n ...; exec node ...'`, so the PID is node's own. With
 * `ipc: true` the child gets Node's IPC channel (fd 3 survives the exec).
 */
export function spawnNode(args, { env = {}, inheritEnv = true, ipc = false, cwd, quiet = true, label = 'child', prefix = [] } = {}) {
  const quote = (s) => `'${String(s).replaceAll("'", `'\\''`)}'`;
  // `prefix`: a command the node process runs under, e.g. ['taskset', '-c', '0'].
  const script = `ulimit -n ${hardFileLimit()} 2>/dev/null; exec ${[...prefix, process.execPath, ...args].map(quote).join(' ')}`;
  const child = spawn('bash', ['-c', script], {
    cwd,
    env: { ...(inheritEnv ? process.env : { PATH: process.env.PATH ?? '/usr/bin:/bin' }), NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
    serialization: 'advanced',
  });
  let out = '';
  const keep = (d) => {
    out += d.toString();
    if (out.length > 64_000) {
      out = out.slice(-32_000);
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', (d) => {
    keep(d);
    if (!quiet) {
      process.stderr.write(`[${label}] ${d}`);
    }
  });
  child.output = () => out;
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  return child;
}

/** Ends a child we started, by its PID: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

/**
 * Request/response over a child's IPC channel: each request carries an id, the child
 * answers `{ id, ok, ...result }` or `{ id, ok: false, error }`.
 */
export function ipcClient(child, label) {
  let next = 1;
  const pending = new Map();
  child.on('message', (msg) => {
    const p = pending.get(msg?.id);
    if (!p) {
      return;
    }
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) {
      p.resolve(msg);
    } else {
      p.reject(new Error(`${label}: ${msg.error}`));
    }
  });
  child.once('exit', (code) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`${label} exited (${code}) during a request:\n${child.output().slice(-2000)}`));
    }
    pending.clear();
  });
  return (cmd, args = {}, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${label}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      child.send({ id, cmd, ...args });
    });
}

/** Waits for the child's first IPC message of `type` (its "ready"), or fails on exit/timeout. */
export function waitForMessage(child, type, timeoutMs, label) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`${label} not ready after ${timeoutMs} ms:\n${child.output().slice(-2000)}`));
    }, timeoutMs);
    const onMessage = (msg) => {
      if (msg?.type === type) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg);
      }
    };
    child.on('message', onMessage);
    void child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code}) before it was ready:\n${child.output().slice(-2000)}`));
    });
  });
}

function threadsOf(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
}

const schedstatWorks = (() => {
  try {
    readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8');
    return true;
  } catch {
    return false;
  }
})();

/**
 * CPU time (ms) the processes have used so far, all threads (libuv pool, GC) included:
 * the sum of /proc/<pid>/task/<tid>/schedstat (ns), or utime+stime ticks where
 * schedstat is missing.
 */
export function cpuMs(pids) {
  let total = 0;
  for (const pid of pids) {
    if (schedstatWorks) {
      for (const tid of threadsOf(pid)) {
        try {
          total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
        } catch {
          // thread gone between readdir and read
        }
      }
    } else {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        total += ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
      } catch {
        // process gone
      }
    }
  }
  return total;
}

/** PIDs whose parent is `pid` (nginx's workers). */
export function childPids(pid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) {
        out.push(Number(entry));
      }
    } catch {
      // gone
    }
  }
  return out;
}

/** Monotonic clock in ms (CLOCK_MONOTONIC: the same clock in every process of the machine). */
export function nowMs() {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port free on 127.0.0.1 right now, for a child to listen on. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

/** 127.0.0.x source addresses usable here (more ephemeral ports for thousands of clients). */
export async function sourceAddresses() {
  const out = ['127.0.0.1'];
  for (const addr of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
    const ok = await new Promise((r) => {
      const srv = createServer();
      srv.once('error', () => r(false));
      srv.listen(0, addr, () => srv.close(() => r(true)));
    });
    if (ok) {
      out.push(addr);
    }
  }
  return out;
}

/**
 * Polls `isUp()` every `everyMs` until it is true; fails when the child (running `script`)
 * exits first or after `timeoutMs` (30 s), with the child's output.
 */
export async function waitUntilUp(child, script, isUp, everyMs, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`node ${script} exited (${child.exitCode}):\n${child.output()}`);
    }
    if (await isUp()) {
      return;
    }
    await sleep(everyMs);
  }
  throw new Error(`stackcast did not answer /status within ${timeoutMs / 1000} s:\n${child.output()}`);
}

/** Whether GET http://127.0.0.1:<port>/status answers 200. */
export const statusUp = (port) =>
  fetch(`http://127.0.0.1:${port}/status`).then(
    (res) => res.status === 200,
    () => false,
  );

/**
 * The service's limits, sized for a star party, raised on purpose for a bench: thousands of
 * viewers come from a few loopback addresses.
 */
export const BENCH_LIMITS_ENV = {
  MAX_VIEWERS: '100000',
  MAX_VIEWERS_PER_ADDRESS: '100000',
  MAX_CONNECTIONS: '100000',
  MAX_CONNECTIONS_PER_ADDRESS: '100000',
  UPGRADE_BURST: '100000',
  UPGRADES_PER_SECOND: '100000',
};

/**
 * glibc's malloc arenas as the container caps them (its Dockerfile's `MALLOC_ARENA_MAX=2`,
 * docs/configuration.md#memory-on-linux): big-sensors runs both services so, unless told
 * `--malloc-arena-max 0` (glibc's default, eight per core on 64-bit). `given`: the option
 * is on the command line, `value` what follows it.
 */
export function mallocArenaEnv(given, value) {
  if (!given) {
    return { MALLOC_ARENA_MAX: '2' };
  }
  if (value === undefined || !/^\d+$/.test(value)) {
    throw new Error(`--malloc-arena-max ${value ?? ''}: expected a whole number of arenas (0: glibc's default)`);
  }
  const arenas = String(Number(value));
  return arenas === '0' ? {} : { MALLOC_ARENA_MAX: arenas };
}

/**
 * The small-computer profile (issue 23), a stand-in for a Pi-class machine: the service pinned
 * to one core, two libuv threads, one libvips thread per image (`--pi` in the benches).
 */
export const PI_PROFILE = { prefix: ['taskset', '-c', '0'], env: { UV_THREADPOOL_SIZE: '2', SHARP_CONCURRENCY: '1' } };

/**
 * Starts a built service (`main`: its dist/main.js) on a port it picks itself (PORT=0), with
 * a fresh work folder under the system's temp and `env` added; resolves once its log names the
 * port. The caller stops `child` and removes `work`.
 */
export async function startOnFreePort(main, env = {}, label = 'stackcast') {
  const work = await mkdtemp(join(tmpdir(), `${label}-`));
  const child = spawn(process.execPath, [main], { env: { PATH: process.env.PATH, PORT: '0', WORK_FOLDER: work, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const port = /listening on \S*:(\d+)\)/.exec(out)?.[1];
    if (port) {
      return { port: Number(port), base: `http://127.0.0.1:${port}`, child, work };
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      throw new Error(`the service did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
