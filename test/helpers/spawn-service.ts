import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface SpawnedService {
  baseUrl: string;
  port: number;
  pid: number;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends `signal` (SIGTERM by default) and resolves with the exit code once it exited. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number | null>;
}

export interface RunOptions {
  /** Open-files limit of the service (soft and hard), set with `prlimit`; the PID stays node's. */
  nofile?: number;
}

export interface SpawnOptions extends RunOptions {
  /** The service speaks HTTPS (TLS_* in env): `baseUrl` is https:// and readiness is asked over TLS. */
  https?: boolean;
}

/** Runs `node dist/main.js` with `env`, from the temp folder by default so no developer's .env is read. */
export function runService(
  env: Record<string, string>,
  cwd = tmpdir(),
  { nofile }: RunOptions = {},
): { child: ChildProcess; exited: Promise<number | null>; out: () => string; err: () => string } {
  if (!existsSync(MAIN)) {
    throw new Error('dist/main.js is missing: run `npm run build` first');
  }
  // prlimit execs the command: the child's PID is node's.
  const [command, args] = nofile === undefined ? [process.execPath, [MAIN]] : ['prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, MAIN]];
  const child = spawn(command, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, out: () => out, err: () => err };
}

/** The line START logs once it has bound: `(listening on 0.0.0.0:43127)`, in text or JSON logs. */
const LISTENING = /listening on \S*:(\d+)\)/;

/** The status of `GET url` over HTTPS, whatever the certificate (readiness only). */
function insecureStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.once('error', reject);
    req.end();
  });
}

/**
 * Starts the built service and resolves once it said which port it bound and `/status`
 * there answers 200. `PORT` defaults to 0 (the kernel picks a free port): the port is read
 * from this process's own log, so another test's server can never be the one answering.
 */
export async function spawnService(env: Record<string, string>, timeoutMs = 30_000, options: SpawnOptions = {}): Promise<SpawnedService> {
  const run = runService({ ...env, PORT: env.PORT ?? '0' }, tmpdir(), options);
  const scheme = options.https === true ? 'https' : 'http';
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void run.exited.then((c) => (exitCode = c));
  let port: number | undefined;
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(`service exited with ${exitCode} before answering:\n${run.err()}`);
    }
    port ??= Number(LISTENING.exec(run.out())?.[1]) || undefined;
    if (port !== undefined) {
      const url = `${scheme}://127.0.0.1:${port}/status`;
      const status = await (options.https === true ? insecureStatus(url) : fetch(url, { signal: AbortSignal.timeout(2000) }).then((res) => res.status)).catch(() => 0);
      if (status === 200) {
        break;
      }
    }
    if (Date.now() > deadline) {
      run.child.kill('SIGKILL');
      throw new Error(`service did not answer /status within ${timeoutMs} ms:\n${run.out()}\n${run.err()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const baseUrl = `${scheme}://127.0.0.1:${port}`;
  return {
    baseUrl,
    port,
    pid: run.child.pid!,
    child: run.child,
    stdout: run.out,
    stderr: run.err,
    exited: run.exited,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill(signal);
      }
      return run.exited;
    },
  };
}

/**
 * A TCP port that was free a moment ago (bound on port 0, then released). Another process
 * may take it before it is used: give services `PORT=0` instead where the port need not be
 * known in advance.
 */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
