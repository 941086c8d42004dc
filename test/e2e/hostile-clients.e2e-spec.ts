import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import type { NetworkInterfaceInfo } from 'node:os';
import { WebSocket } from 'ws';
import type { InterfaceTable } from '../../src/modules/network-info/network-interfaces.provider.js';
import { makeJpeg } from '../helpers/images.js';
import { freePort, runService, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { rawWebSocket, RecordingClient } from '../helpers/ws-client.js';

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

    const flooder = await rawWebSocket(port);
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

/** A raw TCP connection to the server from `localAddress` (any 127/8 address works on loopback). */
function rawSocket(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with all the socket received once the server closed it (or `timeoutMs` passed). */
function untilClosed(socket: Socket, timeoutMs: number): Promise<{ closed: boolean; text: string }> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => resolve({ closed: false, text }), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, text });
    });
  });
}

/** One HTTP request from `localAddress`; the status and body. */
function get(port: number, path: string, localAddress: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, localAddress, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** A /ws upgrade from `localAddress`: the open socket, or the refusal's status and Retry-After. */
function upgrade(wsUrl: string, localAddress: string): Promise<{ ws?: WebSocket; status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { localAddress, perMessageDeflate: false });
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
    });
    ws.once('error', reject);
  });
}

describe('limits', () => {
  let server: TestServer | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await server?.close();
    server = undefined;
  });

  it('an address holding many sockets is refused politely while other addresses and the stacker are served', async () => {
    const cap = 40;
    server = await startTestServer({ maxConnectionsPerAddress: cap });
    const { port } = server;
    // The hog fills its share with idle sockets ...
    for (let i = 0; i < cap; i++) {
      sockets.push(await rawSocket(port, '127.0.0.3'));
    }
    // ... then its requests beyond the cap get a 503 with Retry-After, ...
    const asking = await Promise.all(Array.from({ length: 60 }, () => rawSocket(port, '127.0.0.3')));
    sockets.push(...asking);
    const answers = await Promise.all(
      asking.map((s) => {
        const done = untilClosed(s, 5000);
        s.write('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        return done;
      }),
    );
    for (const answer of answers) {
      expect(answer.closed).toBe(true);
      expect(answer.text).toMatch(/^HTTP\/1\.1 503 [^]*retry-after: 10[^]*too many connections/i);
    }
    // ... and its silent ones beyond the cap are closed.
    const silent = await Promise.all(Array.from({ length: 100 }, () => rawSocket(port, '127.0.0.3')));
    sockets.push(...silent);
    const ends = await Promise.all(silent.map((s) => untilClosed(s, 5000)));
    expect(ends.every((e) => e.closed)).toBe(true);

    // Another phone, and the stacker's upload from this machine, are served meanwhile.
    expect((await get(port, '/status', '127.0.0.2')).status).toBe(200);
    const upload = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(await makeJpeg()) });
    expect(upload.status).toBe(200);
    // The hog's first sockets, within its share, are still open.
    expect(sockets.slice(0, cap).every((s) => !s.destroyed)).toBe(true);
  });

  it('a client that stops reading a response is closed; a normal reader gets the whole image', async () => {
    // A long keep-alive, so a socket closed here was closed by the slow-reader check.
    server = await startTestServer({ slowClientWindowMs: 300, minReadBytesPerSecond: 64 * 1024, keepAliveTimeoutMs: 60_000 });
    // Noise does not compress: a JPEG larger than loopback's socket buffers.
    const noise = await sharp(randomBytes(3000 * 3000 * 3), { raw: { width: 3000, height: 3000, channels: 3 } })
      .jpeg({ quality: 100 })
      .toBuffer();
    expect(noise.length).toBeGreaterThan(8 * 1024 * 1024);
    await server.notifier.publish(noise);

    const reader = await rawSocket(server.port, '127.0.0.2');
    sockets.push(reader);
    reader.write('GET /web_image.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    reader.pause();
    // A paused socket notices nothing; after a few windows it reads what the kernel holds.
    await new Promise((r) => setTimeout(r, 1000));
    const end = untilClosed(reader, 5000);
    reader.resume();
    const got = await end;
    expect(got.closed).toBe(true);
    expect(Buffer.byteLength(got.text)).toBeLessThan(noise.length);

    const whole = await fetch(`${server.baseUrl}/web_image.jpg`);
    expect((await whole.arrayBuffer()).byteLength).toBe(noise.length);
  });

  it('upgrades beyond the rate of one address are answered 429 with Retry-After; another address is not affected', async () => {
    server = await startTestServer({ upgradeBurst: 3, upgradesPerSecond: 0.5 });
    for (let i = 0; i < 3; i++) {
      const { ws, status } = await upgrade(server.wsUrl, '127.0.0.4');
      expect(status).toBe(101);
      ws?.close();
    }
    const refused = await upgrade(server.wsUrl, '127.0.0.4');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    const other = await upgrade(server.wsUrl, '127.0.0.2');
    expect(other.status).toBe(101);
    other.ws?.close();
  });

  it('MAX_VIEWERS and viewers per address: refused with 503 beyond them, admitted again once a viewer leaves', async () => {
    server = await startTestServer({ maxViewers: 3, maxViewersPerAddress: 2 });
    const a1 = await upgrade(server.wsUrl, '127.0.0.5');
    const a2 = await upgrade(server.wsUrl, '127.0.0.5');
    expect([a1.status, a2.status]).toEqual([101, 101]);
    expect((await upgrade(server.wsUrl, '127.0.0.5')).status).toBe(503);
    const b1 = await upgrade(server.wsUrl, '127.0.0.6');
    expect(b1.status).toBe(101);
    const full = await upgrade(server.wsUrl, '127.0.0.7');
    expect(full.status).toBe(503);
    expect(full.retryAfter).toBeDefined();
    const closed = new Promise((r) => a1.ws?.once('close', r));
    a1.ws?.close();
    await closed;
    const again = await waitForAdmission(server.wsUrl, '127.0.0.7');
    expect(again.status).toBe(101);
    for (const c of [a2, b1, again]) {
      c.ws?.close();
    }
  });

  it('uploads beyond the slots and the queue get 503 with Retry-After; the queued one is published after', async () => {
    server = await startTestServer({ maxUploadsInFlight: 1, maxUploadsQueued: 1 });
    const jpeg = await makeJpeg();
    const held = (): { req: ClientRequest; res: Promise<{ status: number; retryAfter?: string }> } => {
      const req = httpRequest({ host: '127.0.0.1', port: server!.port, path: '/api/image', method: 'PUT', headers: { 'content-type': 'image/jpeg', 'content-length': jpeg.length } });
      const res = new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
        req.once('response', (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, retryAfter: r.headers['retry-after'] });
        });
        req.once('error', reject);
      });
      req.write(jpeg.subarray(0, 10));
      return { req, res };
    };
    const first = held();
    const second = held();
    await new Promise((r) => setTimeout(r, 100));
    const third = held();
    expect(await third.res).toEqual({ status: 503, retryAfter: '2' });
    first.req.end(jpeg.subarray(10));
    expect((await first.res).status).toBe(200);
    second.req.end(jpeg.subarray(10));
    expect((await second.res).status).toBe(200);
    third.req.destroy();
  });

  it('a PUT with a form Content-Type (curl --data-binary) gets a 415 naming the allowed types, not a 413', async () => {
    server = await startTestServer();
    const res = await fetch(`${server.baseUrl}/api/image`, {
      method: 'PUT',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new Uint8Array(300 * 1024),
    });
    expect(res.status).toBe(415);
    expect(await res.text()).toMatch(/image\/jpeg.*image\/png.*image\/tiff/);
  });
});

/** Upgrades until admitted: the server counts a viewer gone once its socket has closed. */
async function waitForAdmission(wsUrl: string, localAddress: string): Promise<{ ws?: WebSocket; status: number }> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const attempt = await upgrade(wsUrl, localAddress);
    if (attempt.status === 101 || Date.now() > deadline) {
      return attempt;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function v4(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: `${address}/24` };
}

describe('exposure and headers', () => {
  let server: TestServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('/status: anonymous callers get no paths, interfaces or warnings; callers with the token get them all', async () => {
    const token = 'a-control-token-of-32-characters';
    server = await startTestServer({ controlToken: token, watchPath: '/srv/secret/stacks' }, { interfaces: { wlan0: [v4('192.168.1.20')], lo: [v4('127.0.0.1', true)] } });
    const anonymous = await (await fetch(`${server.baseUrl}/status`)).text();
    expect(anonymous).not.toContain('/srv/secret');
    expect(anonymous).not.toContain('wlan0');
    expect(anonymous).not.toContain('"warnings"');
    expect(JSON.parse(anonymous)).toMatchObject({ status: 'running', url: `http://192.168.1.20:${server.port}`, addresses: [{ address: '192.168.1.20' }, { address: '127.0.0.1' }] });
    const full = (await (await fetch(`${server.baseUrl}/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      watch: { path: string };
      addresses: { interface: string }[];
    };
    expect(full.watch.path).toBe('/srv/secret/stacks');
    expect(full.addresses[0].interface).toBe('wlan0');
  });

  it('credentials in PUBLIC_URL are never advertised', async () => {
    server = await startTestServer({ publicUrl: 'https://astro:hunter2@sky.example.org/live' });
    const body = (await (await fetch(`${server.baseUrl}/status`)).json()) as { url: string };
    expect(body.url).toBe('https://sky.example.org/live');
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });

  it('the advertised address follows the interfaces: /status and /qr.svg change, the old address is gone', async () => {
    const table: InterfaceTable = { wlan0: [v4('192.168.1.20')], lo: [v4('127.0.0.1', true)] };
    server = await startTestServer({ addressRefreshMs: 50 }, { interfaces: table });
    const statusUrl = async (): Promise<string> => ((await (await fetch(`${server!.baseUrl}/status`)).json()) as { url: string }).url;
    expect(await statusUrl()).toBe(`http://192.168.1.20:${server.port}`);
    const qrBefore = await (await fetch(`${server.baseUrl}/qr.svg`)).text();
    // The laptop joins another network: the fed table changes under the running service.
    table.wlan0 = [v4('10.42.0.1')];
    const deadline = Date.now() + 3000;
    let url = await statusUrl();
    while (url !== `http://10.42.0.1:${server.port}` && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      url = await statusUrl();
    }
    expect(url).toBe(`http://10.42.0.1:${server.port}`);
    expect(await (await fetch(`${server.baseUrl}/qr.svg`)).text()).not.toBe(qrBefore);
  });

  it('security headers on the viewer, the hot files and the API; no X-Powered-By', async () => {
    server = await startTestServer();
    for (const path of ['/', '/web_image.jpg', '/status', '/nothing-here']) {
      const res = await fetch(`${server.baseUrl}${path}`);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-powered-by'), path).toBeNull();
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("connect-src 'self' ws: wss:");
      expect(csp, path).not.toContain('upgrade-insecure-requests');
    }
  });

  it('a too-short CONTROL_TOKEN is reported by its length, never printed', async () => {
    const temp = await makeTempFolder();
    const secret = 'sh0rt-s3cr3t';
    const run = runService({ PORT: String(await freePort()), WORK_FOLDER: temp.path, CONTROL_TOKEN: secret, PUBLIC_URL: 'ftp://me:pa55word@x' });
    expect(await run.exited).toBe(1);
    expect(run.err()).toContain(`CONTROL_TOKEN (${secret.length} characters) is invalid`);
    expect(run.err()).toMatch(/PUBLIC_URL="ftp:\/\/\*\*\*@x" is invalid/);
    expect(run.err() + run.out()).not.toContain(secret);
    expect(run.err() + run.out()).not.toContain('pa55word');
    await temp.remove();
  });
});
