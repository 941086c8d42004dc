import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { freePort, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kb * 1024;
}

/** A masked client ping frame (clients must mask), with a 125-byte payload. */
function pingFrame(): Buffer {
  const payload = Buffer.alloc(125, 0x70);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x89, 0x80 | 125]), mask, masked]);
}

/** Completes the handshake, stops reading, then writes ping frames until the server cuts it off. */
function pingFlooder(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    socket.once('data', (chunk) => {
      if (!chunk.toString().startsWith('HTTP/1.1 101')) {
        reject(new Error(`handshake refused: ${chunk.toString().split('\r\n')[0]}`));
        return;
      }
      socket.pause();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

describe('hostile clients', () => {
  let service: SpawnedService | undefined;

  afterEach(async () => {
    await service?.kill('SIGKILL');
    service = undefined;
  });

  it('a ping flood from a client that never reads is cut off; RSS stays flat and other viewers are unaffected', async () => {
    const temp = await makeTempFolder();
    const port = await freePort();
    service = await spawnService({ PORT: String(port), WORK_FOLDER: temp.path });
    const good = await RecordingClient.connect(`ws://127.0.0.1:${port}/ws`);
    const before = await rssBytes(service.pid);

    const flooder = await pingFlooder(port);
    let closed = false;
    flooder.on('close', () => (closed = true));
    flooder.on('error', () => undefined);
    const frame = pingFrame();
    const batch = Buffer.concat(Array.from({ length: 512 }, () => frame));
    let written = 0;
    const deadline = Date.now() + 20_000;
    // Bounded: at most 256 MB of pings, at most 20 s.
    while (!closed && Date.now() < deadline && written < 256 * 1024 * 1024) {
      if (!flooder.write(batch)) {
        await new Promise((r) => setTimeout(r, 5));
      }
      written += batch.length;
      if (written % (batch.length * 64) === 0) {
        await new Promise((r) => setImmediate(r));
      }
    }
    const until = Date.now() + 5000;
    while (!closed && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(closed).toBe(true);
    const after = await rssBytes(service.pid);
    expect(after - before).toBeLessThan(150 * 1024 * 1024);

    // The healthy viewer is still connected and still gets the next image, promptly.
    const res = await fetch(`http://127.0.0.1:${port}/api/image`, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      body: new Uint8Array(await makeJpeg()),
    });
    expect(res.status).toBe(200);
    await good.waitFor((c) => c.count('new_image') === 1);
    good.close();
    flooder.destroy();
    await temp.remove();
  });
});
