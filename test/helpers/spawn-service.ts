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

/** The status of `GET url` over HTTPS, whatever the certificate (readiness only). */
function insecureStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

/** Starts the built service and resolves once `/status` answers 200. */
export async function spawnService(env: Record<string, string>, timeoutMs = 15_000, options: SpawnOptions = {}): Promise<SpawnedService> {
  const port = Number(env.PORT);
  if (!port) {
    throw new Error('spawnService needs env.PORT');
  }
  const run = runService(env, tmpdir(), options);
  const baseUrl = `${options.https === true ? 'https' : 'http'}://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void run.exited.then((c) => (exitCode = c));
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(`service exited with ${exitCode} before answering:\n${run.err()}`);
    }
    try {
      const status = options.https === true ? await insecureStatus(`${baseUrl}/status`) : (await fetch(`${baseUrl}/status`)).status;
      if (status === 200) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      run.child.kill('SIGKILL');
      throw new Error(`service did not answer /status within ${timeoutMs} ms:\n${run.out()}\n${run.err()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
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

/** A free TCP port on 127.0.0.1, found by binding port 0 and releasing it. */
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
