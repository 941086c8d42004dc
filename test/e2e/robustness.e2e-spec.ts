import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BroadcastService } from '../../src/gateway/broadcast.service.js';
import { makeJpeg } from '../helpers/images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { rawWebSocket, RecordingClient } from '../helpers/ws-client.js';

describe('robustness', () => {
  let server: TestServer;

  afterEach(async () => {
    await server.close();
  });

  // Each publish also cuts a pyramid, keeps the full image and a history preview and takes a
  // version while this process's own readers keep its event loop busy: a bound, not a target.
  it('a reader looping on the image and data.json during 200 back-to-back publishes never sees a partial file', { timeout: 240_000 }, async () => {
    server = await startTestServer();
    const images = await Promise.all(
      [0, 1, 2, 3].map((i) => makeJpeg({ width: 400, height: 300, color: { r: 60 * i, g: 255 - 60 * i, b: 128 } })),
    );
    const waiting = await readFile(join(server.webFolder, 'web_image.jpg'));
    // Every read must be one of these, whole: the waiting image or a published one.
    const valid = new Set([waiting, ...images].map((img) => img.toString('base64')));
    const validData = (json: string): boolean => {
      const data = JSON.parse(json) as { STACK_SIZE: number; EXPO: string };
      return Number.isInteger(data.STACK_SIZE) && /^\d+:\d\d:\d\d$/.test(data.EXPO);
    };
    let publishing = true;
    const seen = { http: 0, disk: 0 };

    const httpReader = (async () => {
      while (publishing) {
        const [img, data] = await Promise.all([fetch(`${server.baseUrl}/web_image.jpg`), fetch(`${server.baseUrl}/data.json`)]);
        expect(valid.has(Buffer.from(await img.arrayBuffer()).toString('base64'))).toBe(true);
        expect(validData(await data.text())).toBe(true);
        seen.http++;
      }
    })();
    // The files on disk, through the renames (what ALS-style readers of the folder see).
    const diskReader = (async () => {
      while (publishing) {
        const bytes = await readFile(join(server.webFolder, 'web_image.jpg'));
        const json = await readFile(join(server.webFolder, 'data.json'), 'utf8');
        expect(valid.has(bytes.toString('base64'))).toBe(true);
        expect(validData(json)).toBe(true);
        seen.disk++;
      }
    })();

    for (let i = 0; i < 200; i++) {
      await server.notifier.publish(images[i % images.length], { stackSize: i + 1, exposureSeconds: (i + 1) * 10 });
    }
    publishing = false;
    await Promise.all([httpReader, diskReader]);
    expect(seen.http).toBeGreaterThan(5);
    expect(seen.disk).toBeGreaterThan(5);
    // Every image on disk decodes completely.
    await expect(sharp(await readFile(join(server.webFolder, 'web_image.jpg'))).raw().toBuffer()).resolves.toBeInstanceOf(Buffer);
    expect(JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 200 });
  });

  it('a client sending a huge frame is closed; another client still gets every message', async () => {
    server = await startTestServer({ maxClientFrameBytes: 4096 });
    const good = await RecordingClient.connect(server.wsUrl);
    const bad = await RecordingClient.connect(server.wsUrl);
    bad.socket.send(Buffer.alloc(64 * 1024, 0x61));
    await bad.closed;
    expect(bad.closeCode).toBe(1009);
    for (let i = 0; i < 5; i++) {
      await server.notifier.publish(await makeJpeg(), { stackSize: i });
    }
    await good.waitFor((c) => c.count('new_image') === 5);
    // Small frames from a client are ignored, never echoed, and do not close it.
    good.socket.send(JSON.stringify({ event: 'hello', data: 'x' }));
    good.socket.send('not json');
    await server.notifier.publish(await makeJpeg());
    await good.waitFor((c) => c.count('new_image') === 6);
    // Its own hello first, then only the broadcasts: nothing it sent came back.
    expect(good.messages.every((m) => ['hello', 'new_image'].includes((m as { type: string }).type))).toBe(true);
    expect(good.count('hello')).toBe(1);
    expect(good.socket.readyState).toBe(WebSocket.OPEN);
    good.close();
  });

  it('a client that never reads is dropped once its backlog passes the bound; the others get every message', async () => {
    server = await startTestServer({ maxClientBacklogBytes: 64 * 1024 });
    const broadcast = server.app.get(BroadcastService);
    let received = 0;
    const good = new WebSocket(server.wsUrl, { perMessageDeflate: false });
    // Counts the broadcasts only (not the session's hello or viewer counts).
    good.on('message', (data: Buffer) => {
      if (data.includes('new_image')) {
        received++;
      }
    });
    await new Promise((r) => good.once('open', r));
    const stalled = await rawWebSocket(server.port);
    await new Promise<void>((resolve) => {
      const check = (): void => (broadcast.count === 2 ? resolve() : void setTimeout(check, 5));
      check();
    });

    // Broadcast in batches, yielding between them so healthy sockets drain, until the
    // stalled client's kernel buffers are full and its backlog passes the bound.
    let sent = 0;
    const deadline = Date.now() + 20_000;
    while (broadcast.count === 2 && Date.now() < deadline && sent < 2_000_000) {
      for (let i = 0; i < 2000; i++) {
        broadcast.broadcast({ type: 'new_image' });
      }
      sent += 2000;
      await new Promise((r) => setImmediate(r));
    }
    expect(broadcast.count).toBe(1);
    const closedAt = sent;
    for (let i = 0; i < 100; i++) {
      broadcast.broadcast({ type: 'new_image' });
    }
    sent += 100;
    const until = Date.now() + 10_000;
    while (received < sent && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(received).toBe(sent);
    expect(closedAt).toBeGreaterThan(0);
    good.close();
    stalled.destroy();
  });

  it('the heartbeat drops a client that stops answering pings, and keeps one that answers', async () => {
    server = await startTestServer({ heartbeatIntervalMs: 50 });
    const broadcast = server.app.get(BroadcastService);
    const alive = await RecordingClient.connect(server.wsUrl);
    const silent = await rawWebSocket(server.port);
    const deadline = Date.now() + 5000;
    while (broadcast.count !== 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(broadcast.count).toBe(1);
    // The live client survives many heartbeats and still receives messages.
    await new Promise((r) => setTimeout(r, 300));
    await server.notifier.publish(await makeJpeg());
    await alive.waitFor((c) => c.count('new_image') === 1);
    alive.close();
    silent.destroy();
  });

  it('a broken socket during a broadcast does not stop the others from receiving it', async () => {
    server = await startTestServer();
    const clients = await Promise.all([0, 1, 2, 3, 4].map(() => RecordingClient.connect(server.wsUrl)));
    // Kill two connections from the client side without a close handshake.
    clients[1].socket.terminate();
    clients[3].socket.terminate();
    await server.notifier.publish(await makeJpeg());
    for (const i of [0, 2, 4]) {
      await clients[i].waitFor((c) => c.count('new_image') === 1);
    }
    clients.forEach((c) => c.close());
  });
});
