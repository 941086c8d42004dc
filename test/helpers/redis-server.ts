import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from './spawn-service.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

/** A real redis-server on a loopback port, no persistence: a restart starts it empty. */
export interface RedisTestServer {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  pid(): number | undefined;
  /** SIGKILL the server (by PID) and wait for it to be gone. */
  kill(): Promise<void>;
  /** Start it again on the same port (empty: nothing is saved). */
  restart(): Promise<void>;
  /** Stop it for good. */
  stop(): Promise<void>;
}

/** Resolves once a PING over raw RESP gets +PONG. */
async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    // With requirepass an unauthenticated PING answers NOAUTH: up all the same.
    socket.once('data', (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())));
  });
}

function launch(port: number, extraArgs: readonly string[]): { child: ChildProcess; exited: Promise<void>; log: () => string } {
  const args = ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--loglevel', 'warning', ...extraArgs];
  const child = spawn(REDIS_SERVER, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited, log: () => log };
}

async function waitUntilUp(port: number, run: ReturnType<typeof launch>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void run.exited.then(() => (gone = true));
  while (!(await answersPing(port))) {
    if (gone) {
      throw new Error(`redis-server exited before answering on port ${port}:\n${run.log()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms:\n${run.log()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts Debian's redis-server on a free loopback port and waits until it answers.
 * `extraArgs` go to redis-server as they are (e.g. `['--requirepass', 'x']`).
 */
export async function startRedisServer(timeoutMs = 10_000, extraArgs: readonly string[] = []): Promise<RedisTestServer> {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(`${REDIS_SERVER} is missing: apt-get install -y redis-server`);
  }
  const port = await freePort();
  let run: ReturnType<typeof launch> | undefined = launch(port, extraArgs);
  await waitUntilUp(port, run, timeoutMs);
  const kill = async (): Promise<void> => {
    const current = run;
    run = undefined;
    if (current && current.child.exitCode === null && current.child.signalCode === null) {
      current.child.kill('SIGKILL');
      await current.exited;
    }
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => run?.child.pid,
    kill,
    async restart() {
      await kill();
      run = launch(port, extraArgs);
      await waitUntilUp(port, run, timeoutMs);
    },
    stop: kill,
  };
}
