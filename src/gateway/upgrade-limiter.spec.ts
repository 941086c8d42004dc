import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RefusalLog } from '../shared/http-limits/refusal-log.js';
import { UpgradeLimiter } from './upgrade-limiter.js';

/** Real TCP connections over loopback; the server side of each is what the limiter sees. */
describe('UpgradeLimiter counts viewers per socket, with one shared close listener', () => {
  let server: Server;
  const accepted: Socket[] = [];
  const clients: Socket[] = [];

  beforeEach(async () => {
    server = createServer((socket) => accepted.push(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  afterEach(async () => {
    for (const s of [...clients, ...accepted]) {
      s.destroy();
    }
    clients.length = 0;
    accepted.length = 0;
    server.close();
    await once(server, 'close');
  });

  /** A client from `localAddress`; resolves with the server's side of it. */
  async function open(localAddress: string): Promise<Socket> {
    const port = (server.address() as { port: number }).port;
    const before = accepted.length;
    const client = connect({ port, host: '127.0.0.1', localAddress });
    clients.push(client);
    await once(client, 'connect');
    while (accepted.length === before) {
      await once(server, 'connection');
    }
    return accepted[accepted.length - 1];
  }

  const requestOn = (socket: Socket): IncomingMessage => ({ socket }) as IncomingMessage;

  function limiter(): UpgradeLimiter {
    return new UpgradeLimiter(
      { maxViewers: 3, maxViewersPerAddress: 2, upgradeBurst: 100, upgradesPerSecond: 100 },
      new RefusalLog(new Logger('test')),
    );
  }

  it('frees a slot when a counted socket closes, once, and adds one listener per socket', async () => {
    const limits = limiter();
    const a = await open('127.0.0.2');
    const b = await open('127.0.0.2');
    const c = await open('127.0.0.2');
    expect(limits.admit(requestOn(a))).toBeUndefined();
    expect(limits.admit(requestOn(b))).toBeUndefined();
    expect(limits.viewers).toBe(2);
    expect(a.listenerCount('close')).toBe(1);
    // The same listener function for every socket: nothing is made per viewer.
    expect(a.listeners('close')[0]).toBe(b.listeners('close')[0]);
    const refused = limits.admit(requestOn(c));
    expect(refused?.code).toBe(503);
    expect(refused?.message).toBe('Too many viewers from this address');
    expect(limits.viewers).toBe(2);

    a.destroy();
    await once(a, 'close');
    expect(limits.viewers).toBe(1);
    expect(limits.admit(requestOn(c))).toBeUndefined();
    expect(limits.viewers).toBe(2);
    // A second 'close' (none is emitted by Node; a listener must not count twice) changes nothing.
    a.emit('close', false);
    expect(limits.viewers).toBe(2);
  });

  it('keeps the total cap across addresses and frees it as sockets close', async () => {
    const limits = limiter();
    const sockets = [await open('127.0.0.2'), await open('127.0.0.3'), await open('127.0.0.4')];
    for (const s of sockets) {
      expect(limits.admit(requestOn(s))).toBeUndefined();
    }
    const extra = await open('127.0.0.5');
    expect(limits.admit(requestOn(extra))?.code).toBe(503);
    for (const s of sockets) {
      s.destroy();
      await once(s, 'close');
    }
    expect(limits.viewers).toBe(0);
    expect(limits.admit(requestOn(extra))).toBeUndefined();
    expect(limits.viewers).toBe(1);
  });
});
