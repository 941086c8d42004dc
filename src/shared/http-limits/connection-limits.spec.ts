import { Logger } from '@nestjs/common';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionGuard } from './connection-limits.js';
import { RefusalLog } from './refusal-log.js';

const LIMITS = {
  maxConnections: 100,
  maxConnectionsPerAddress: 1,
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  minReadBytesPerSecond: 1,
  slowClientWindowMs: 60_000,
};

/** Everything a raw client receives until the server closes the connection. */
async function answerOf(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  await once(socket, 'close');
  return text;
}

describe('ConnectionGuard: an upgraded socket keeps its address slot until it closes', () => {
  let server: Server;
  const sockets: Socket[] = [];
  const upgradedSockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets) {
      s.destroy();
    }
    for (const s of upgradedSockets) {
      s.destroy();
    }
    upgradedSockets.length = 0;
    sockets.length = 0;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  it('counts the upgraded socket toward its address, and frees the slot at its close', async () => {
    const upgraded = upgradedSockets;
    server = createServer((_req, res) => res.end('ok'));
    server.on('upgrade', (_req, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
      // As ws does: the HTTP server allows half-open sockets, so the peer's end is answered.
      socket.on('end', () => socket.destroy());
      upgraded.push(socket);
    });
    const guard = new ConnectionGuard(LIMITS, new RefusalLog(new Logger('test')), new Logger('test'));
    guard.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const open = async (): Promise<Socket> => {
      const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      sockets.push(s);
      await once(s, 'connect');
      return s;
    };

    const viewer = await open();
    viewer.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n`);
    const [head] = (await once(viewer, 'data')) as [Buffer];
    expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
    expect(guard.open).toBe(1);

    // Over the per-address cap of 1 while the upgraded socket is open: a canned 503.
    const refused = await open();
    expect(await answerOf(refused)).toMatch(/^HTTP\/1\.1 503 [\s\S]*too many connections from this address/);
    expect(guard.open).toBe(1);

    const serverSide = upgraded[0];
    viewer.destroy();
    await once(serverSide, 'close');
    expect(guard.open).toBe(0);

    const next = await open();
    next.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(await answerOf(next)).toMatch(/^HTTP\/1\.1 200 [\s\S]*ok$/);
    guard.detach();
  });
});
