import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

const TOKEN = 'club-a-secret-0123456789';
const IMAGES = 20;

/**
 * A reader of `pattern`'s first group in a byte stream: each match once, also across chunks (what
 * follows the last match is kept for the next chunk, at most 64 characters of it).
 */
function lines(pattern: RegExp): (chunk: Buffer) => string[] {
  let carry = '';
  return (chunk) => {
    const text = carry + chunk.toString('latin1');
    const found: string[] = [];
    let end = 0;
    for (const m of text.matchAll(pattern)) {
      found.push(m[1]);
      end = m.index + m[0].length;
    }
    carry = text.slice(Math.max(end, text.length - 64));
    return found;
  };
}

/**
 * A TCP forwarder on a port-0 listener: the laptop's UPSTREAM_URL stays the same while the
 * hub dies and comes back on another port. With no hub, a connection is closed at once.
 * It records, in the hub's order, the stack size of every upload the hub answered 200.
 */
class Forwarder {
  target: number | undefined;
  readonly accepted: number[] = [];
  private onAccepted: (() => void)[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.once('close', () => this.sockets.delete(client));
      client.on('error', () => client.destroy());
      if (this.target === undefined) {
        client.destroy();
        return;
      }
      const upstream = connect({ port: this.target, host: '127.0.0.1' });
      this.sockets.add(upstream);
      upstream.once('close', () => (this.sockets.delete(upstream), client.destroy()));
      upstream.on('error', () => upstream.destroy());
      client.once('close', () => upstream.destroy());
      // Requests on one connection are answered in order: pair each request line with the next status line.
      const asked: number[] = [];
      // Each line is read once, even when a chunk cuts it (the rest comes with the next chunk).
      const requests = lines(/PUT \/s\/club-a\/api\/image\?stackSize=(\d+)[&\s]/g);
      const statuses = lines(/HTTP\/1\.1 (\d{3}) /g);
      client.on('data', (chunk: Buffer) => {
        for (const size of requests(chunk)) {
          asked.push(Number(size));
        }
      });
      upstream.on('data', (chunk: Buffer) => {
        for (const status of statuses(chunk)) {
          const size = asked.shift();
          if (status === '200' && size !== undefined) {
            this.accepted.push(size);
            this.onAccepted.splice(0).forEach((resolve) => resolve());
          }
        }
      });
      client.pipe(upstream).pipe(client);
    });
  }

  /** Resolves once the hub has taken at least `count` uploads. */
  async taken(count: number): Promise<void> {
    while (this.accepted.length < count) {
      await new Promise<void>((resolve) => this.onAccepted.push(resolve));
    }
  }

  async start(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.sockets.forEach((s) => s.destroy());
    this.server.close();
    await once(this.server, 'close');
  }
}

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup();
  }
});

async function folder(prefix: string): Promise<string> {
  const made = await makeTempFolder(prefix);
  cleanups.push(() => made.remove());
  return made.path;
}

async function started(env: Record<string, string>): Promise<SpawnedService> {
  // A loaded machine may take a while to start the hub again.
  const service = await spawnService(env, 60_000);
  cleanups.push(() => service.kill());
  return service;
}

async function bytes(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('relay between two real processes: a laptop feeding a hub that dies and comes back', () => {
  it('the local viewers get all 20, the hub ends with the latest and never takes an older one after a newer one', async () => {
    const hubEnv = { WORK_FOLDER: await folder('stackcast-hub-'), SCOPE_TOKENS: `club-a=${TOKEN}` };
    let hub = await started(hubEnv);
    const forwarder = new Forwarder();
    forwarder.target = hub.port;
    const forwarderPort = await forwarder.start();
    cleanups.push(() => forwarder.stop());
    const laptop = await started({
      WORK_FOLDER: await folder('stackcast-laptop-'),
      UPSTREAM_URL: `http://127.0.0.1:${forwarderPort}/s/club-a/`,
      UPSTREAM_TOKEN: TOKEN,
    });
    const viewers = await Promise.all([1, 2].map(() => RecordingClient.connect(`${laptop.baseUrl.replace('http', 'ws')}/ws`)));
    cleanups.push(() => Promise.resolve(viewers.forEach((v) => v.close())));

    for (let n = 1; n <= IMAGES; n++) {
      if (n === 7) {
        // The hub had images before it died (its first one creates the scope).
        await forwarder.taken(1);
        // kill -9 by PID: no goodbye, an upload may be cut in the middle.
        process.kill(hub.pid, 'SIGKILL');
        await hub.exited;
        forwarder.target = undefined;
      }
      if (n === 14) {
        hub = await started(hubEnv);
        forwarder.target = hub.port;
      }
      const jpeg = await makeJpeg({ width: 64 + n, height: 48, color: { r: 10 * n, g: 120, b: 250 - 10 * n } });
      const res = await fetch(`${laptop.baseUrl}/api/image?stackSize=${n}&exposure=${n * 30}&object=M%2042`, {
        method: 'PUT',
        headers: { 'content-type': 'image/jpeg' },
        body: new Uint8Array(jpeg),
      });
      expect(res.status).toBe(200);
    }
    for (const viewer of viewers) {
      await viewer.waitFor((c) => c.count('new_image') >= IMAGES, 10_000, `${IMAGES} new_image`);
      expect(viewer.count('new_image')).toBe(IMAGES);
    }

    // The hub has the latest within seconds of coming back (backoff: 1 s doubling, 60 s cap).
    await expect
      .poll(async () => ((await (await fetch(`${hub.baseUrl}/s/club-a/data.json`)).json()) as { STACK_SIZE: number }).STACK_SIZE, { timeout: 20_000, interval: 200 })
      .toBe(IMAGES);
    expect((await bytes(`${hub.baseUrl}/s/club-a/web_image.jpg`)).equals(await bytes(`${laptop.baseUrl}/web_image.jpg`))).toBe(true);
    const hubData = (await (await fetch(`${hub.baseUrl}/s/club-a/data.json`)).json()) as { OBJECT?: string; EXPOSURE?: unknown };
    expect(hubData.OBJECT).toBe('M 42');

    // What the hub took, across both of its lives, in its order: increasing, ending with the latest.
    const sizes = forwarder.accepted;
    expect(sizes.at(-1)).toBe(IMAGES);
    expect(sizes.some((s) => s < 7)).toBe(true);
    for (let i = 1; i < sizes.length; i++) {
      expect(sizes[i]).toBeGreaterThan(sizes[i - 1]);
    }
    const history = (await (await fetch(`${hub.baseUrl}/s/club-a/api/history`)).json()) as { frames: { stackSize: number }[] };
    // The hub's own record (its history survives the kill): increasing too, with every upload it answered.
    const frames = history.frames.map((f) => f.stackSize);
    expect(frames).toEqual([...new Set(frames)].sort((a, b) => a - b));
    expect(frames).toEqual(expect.arrayContaining(sizes));

    const status = (await (await fetch(`${laptop.baseUrl}/status`)).json()) as { upstream: { state: string; lastSentVersion: number } };
    const laptopData = (await (await fetch(`${laptop.baseUrl}/data.json`)).json()) as { VERSION: number };
    expect(status.upstream).toMatchObject({ state: 'ok', lastSentVersion: laptopData.VERSION });
    expect(laptop.stdout().match(/is not taking images/g)?.length).toBeGreaterThanOrEqual(1);
    expect(laptop.stdout() + laptop.stderr()).not.toContain(TOKEN);
  }, 120_000);
});
