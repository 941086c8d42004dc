import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import type { NetworkInterfaceInfo } from 'node:os';
import { WebSocket } from 'ws';
import type { ImageServerOptions } from '../../src/config/image-server-options.js';
import type { InterfaceTable } from '../../src/modules/network-info/network-interfaces.provider.js';
import { makeJpeg } from '../helpers/images.js';
import { freePort, runService, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls-cert.js';
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
    service = await spawnService({ WORK_FOLDER: temp.path });
    const { port } = service;
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

/** A /ws upgrade from `localAddress`: the open socket, or the refusal's status and Retry-After. */
function upgrade(wsUrl: string, localAddress: string, ca?: string): Promise<{ ws?: WebSocket; status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { localAddress, perMessageDeflate: false, ca });
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
    });
    ws.once('error', reject);
  });
}

/** The schemes the connection caps are tested over: the same limits must hold on both. */
const SCHEMES = ['http', 'https'] as const;
type Scheme = (typeof SCHEMES)[number];

/** A TLS connection from `localAddress` trusting only `ca`: the socket once secure, or why it failed. */
function tlsSocket(port: number, localAddress: string, ca: string): Promise<{ socket: TLSSocket; secure: boolean }> {
  return new Promise((resolve) => {
    // tls.connect takes no localAddress: TLS over a TCP socket opened from that address.
    const tcp = connect({ port, host: '127.0.0.1', localAddress });
    tcp.on('error', () => undefined);
    const socket = tlsConnect({ socket: tcp, host: '127.0.0.1', ca }, () => resolve({ socket, secure: true }));
    socket.once('error', () => resolve({ socket, secure: false }));
    socket.once('close', () => resolve({ socket, secure: false }));
  });
}

/** One request over `scheme` from `localAddress`; the status, body and headers. */
function ask(
  scheme: Scheme,
  port: number,
  { path = '/status', method = 'GET', localAddress, ca, body, headers = {} }: { path?: string; method?: string; localAddress: string; ca?: string; body?: Buffer; headers?: Record<string, string> },
): Promise<{ status: number; body: Buffer; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const request = scheme === 'https' ? httpsRequest : httpRequest;
    const req = request({ host: '127.0.0.1', port, path, method, localAddress, ca, headers: { connection: 'close', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * `count` plain TCP sockets from `localAddress`, each sending one byte (an HTTP request's
 * first byte, or a TLS record's type: a half-open handshake) and then nothing.
 */
async function oneByteSockets(scheme: Scheme, port: number, localAddress: string, count: number): Promise<{ sockets: Socket[]; closed: () => number; untilClosed: (n: number, timeoutMs: number) => Promise<number> }> {
  const sockets: Socket[] = [];
  let closed = 0;
  let wake = (): void => undefined;
  for (let i = 0; i < count; i++) {
    sockets.push(
      await new Promise<Socket>((resolve) => {
        const socket = connect({ port, host: '127.0.0.1', localAddress }, () => {
          socket.write(scheme === 'https' ? Buffer.from([0x16]) : 'G');
          // Reads what comes (a refusal), so the server's close is seen.
          socket.resume();
          resolve(socket);
        });
        socket.on('error', () => resolve(socket));
        socket.once('close', () => {
          closed += 1;
          wake();
        });
      }),
    );
  }
  const untilClosed = (n: number, timeoutMs: number): Promise<number> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(closed), timeoutMs);
      wake = () => {
        if (closed >= n) {
          clearTimeout(timer);
          resolve(closed);
        }
      };
      wake();
    });
  return { sockets, closed: () => closed, untilClosed };
}

describe.each(SCHEMES)('connection caps over %s', (scheme) => {
  let server: TestServer | undefined;
  let pair: TestCertificate | undefined;
  const sockets: Socket[] = [];

  const start = async (options: Partial<ImageServerOptions>): Promise<TestServer> => {
    pair ??= await makeTestCertificate();
    return startTestServer(options, scheme === 'https' ? { https: pair } : {});
  };
  const publish = async (port: number): Promise<number> =>
    (await ask(scheme, port, { path: '/api/image', method: 'PUT', localAddress: '127.0.0.1', ca: pair?.cert, body: await makeJpeg(), headers: { 'content-type': 'image/jpeg' } })).status;

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await server?.close();
    server = undefined;
  });

  it('an address holding many sockets is refused politely while other addresses and the stacker are served', async () => {
    const cap = 40;
    server = await start({ maxConnectionsPerAddress: cap });
    const { port } = server;
    const ca = pair!.cert;
    // The hog fills its share with idle sockets ...
    for (let i = 0; i < cap; i++) {
      sockets.push(scheme === 'http' ? await rawSocket(port, '127.0.0.3') : (await tlsSocket(port, '127.0.0.3', ca)).socket);
    }
    if (scheme === 'http') {
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
    } else {
      // ... then its TLS connections beyond the cap are closed before any handshake, ...
      const asking = await Promise.all(Array.from({ length: 60 }, () => tlsSocket(port, '127.0.0.3', ca)));
      sockets.push(...asking.map((a) => a.socket));
      expect(asking.filter((a) => a.secure)).toHaveLength(0);
    }
    // ... and its silent ones beyond the cap are closed.
    const silent = await Promise.all(Array.from({ length: 100 }, () => rawSocket(port, '127.0.0.3')));
    sockets.push(...silent);
    const ends = await Promise.all(silent.map((s) => untilClosed(s, 5000)));
    expect(ends.every((e) => e.closed)).toBe(true);

    // Another phone, and the stacker's upload from this machine, are served meanwhile.
    expect((await ask(scheme, port, { localAddress: '127.0.0.2', ca })).status).toBe(200);
    expect(await publish(port)).toBe(200);
    // The hog's first sockets, within its share, are still open.
    expect(sockets.slice(0, cap).every((s) => !s.destroyed)).toBe(true);
  });

  it('a client that stops reading a response is closed; a normal reader gets the whole image', async () => {
    // A long keep-alive, so a socket closed here was closed by the slow-reader check.
    server = await start({ slowClientWindowMs: 300, minReadBytesPerSecond: 64 * 1024, keepAliveTimeoutMs: 60_000 });
    // Noise does not compress: a JPEG larger than loopback's socket buffers.
    const noise = await sharp(randomBytes(3000 * 3000 * 3), { raw: { width: 3000, height: 3000, channels: 3 } })
      .jpeg({ quality: 100 })
      .toBuffer();
    expect(noise.length).toBeGreaterThan(8 * 1024 * 1024);
    await server.notifier.publish(noise);

    const reader = scheme === 'http' ? await rawSocket(server.port, '127.0.0.2') : (await tlsSocket(server.port, '127.0.0.2', pair!.cert)).socket;
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

    const whole = await ask(scheme, server.port, { path: '/web_image.jpg', localAddress: '127.0.0.1', ca: pair?.cert });
    expect(whole.body.length).toBe(noise.length);
  });

  it('upgrades beyond the rate of one address are answered 429 with Retry-After; another address is not affected', async () => {
    server = await start({ upgradeBurst: 3, upgradesPerSecond: 0.5 });
    const ca = pair?.cert;
    for (let i = 0; i < 3; i++) {
      const { ws, status } = await upgrade(server.wsUrl, '127.0.0.4', ca);
      expect(status).toBe(101);
      ws?.close();
    }
    const refused = await upgrade(server.wsUrl, '127.0.0.4', ca);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    const other = await upgrade(server.wsUrl, '127.0.0.2', ca);
    expect(other.status).toBe(101);
    other.ws?.close();
  });

  it('MAX_VIEWERS and viewers per address: refused with 503 beyond them, admitted again once a viewer leaves', async () => {
    server = await start({ maxViewers: 3, maxViewersPerAddress: 2 });
    const ca = pair?.cert;
    const a1 = await upgrade(server.wsUrl, '127.0.0.5', ca);
    const a2 = await upgrade(server.wsUrl, '127.0.0.5', ca);
    expect([a1.status, a2.status]).toEqual([101, 101]);
    expect((await upgrade(server.wsUrl, '127.0.0.5', ca)).status).toBe(503);
    const b1 = await upgrade(server.wsUrl, '127.0.0.6', ca);
    expect(b1.status).toBe(101);
    const full = await upgrade(server.wsUrl, '127.0.0.7', ca);
    expect(full.status).toBe(503);
    expect(full.retryAfter).toBeDefined();
    const closed = new Promise((r) => a1.ws?.once('close', r));
    a1.ws?.close();
    await closed;
    const again = await waitForAdmission(server.wsUrl, '127.0.0.7', ca);
    expect(again.status).toBe(101);
    for (const c of [a2, b1, again]) {
      c.ws?.close();
    }
  });

  it('one address flooding one-byte sockets takes nothing from the total: other phones, viewers and the stacker are served', async () => {
    // Issue 19, point 2: refused sockets were counted, so 5,000 of them locked everyone out.
    server = await start({ maxConnections: 100, maxConnectionsPerAddress: 16 });
    const { port } = server;
    const ca = pair!.cert;
    const flood = await oneByteSockets(scheme, port, '127.0.0.2', 300);
    sockets.push(...flood.sockets);
    // Every socket over the address's share is closed at once ...
    expect(await flood.untilClosed(300 - 16, 5000)).toBeGreaterThanOrEqual(300 - 16);
    // ... and counts toward no total: another phone, a viewer and the stacker are served.
    expect((await ask(scheme, port, { localAddress: '127.0.0.3', ca })).status).toBe(200);
    const viewer = await RecordingClient.connect(server.wsUrl, { ca });
    await viewer.waitFor((c) => c.count('hello') === 1);
    viewer.close();
    expect(await publish(port)).toBe(200);
  });

  it('when phones fill every connection, this machine keeps a reserve: the stacker publishes, /status answers', async () => {
    server = await start({ maxConnections: 32, maxConnectionsPerAddress: 8 });
    const { port } = server;
    const ca = pair!.cert;
    // 8 addresses x 8 sockets: more than the 32 connections in all.
    const floods: Awaited<ReturnType<typeof oneByteSockets>>[] = [];
    for (let a = 2; a < 10; a++) {
      const flood = await oneByteSockets(scheme, port, `127.0.0.${a}`, 8);
      sockets.push(...flood.sockets);
      floods.push(flood);
    }
    const phonesOpen = (): number => floods.reduce((sum, f) => sum + 8 - f.closed(), 0);
    // Those over the total are closed at accept; the phones hold less than the total.
    await Promise.all(floods.map((f) => f.untilClosed(8, 300)));
    expect(phonesOpen()).toBeLessThan(32);
    expect(await publish(port)).toBe(200);
    expect((await ask(scheme, port, { localAddress: '127.0.0.1', ca })).status).toBe(200);
    // Once the flood is gone, a new phone is served: nothing was left counted.
    sockets.splice(0).forEach((s) => s.destroy());
    const phone = await waitForStatus(scheme, port, '127.0.0.20', ca);
    expect(phone).toBe(200);
  });

  it('an accept error (EMFILE with the fd table full) is logged, not thrown: the server keeps serving', async () => {
    server = await start({});
    const http = server.app.getHttpServer() as import('node:net').Server;
    const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'accept' });
    // What Node's server emits when libuv cannot accept a connection.
    expect(() => http.emit('error', emfile)).not.toThrow();
    expect((await ask(scheme, server.port, { localAddress: '127.0.0.2', ca: pair?.cert })).status).toBe(200);
  });

  it('a connection that never completes its request headers (or its TLS handshake) is closed after headersTimeoutMs', async () => {
    server = await start({ headersTimeoutMs: 300 });
    const flood = await oneByteSockets(scheme, server.port, '127.0.0.2', 20);
    sockets.push(...flood.sockets);
    expect(await flood.untilClosed(20, 5000)).toBe(20);
    expect((await ask(scheme, server.port, { localAddress: '127.0.0.3', ca: pair?.cert })).status).toBe(200);
  });
});

describe.each(SCHEMES)('one address flooding the built service (nofile=1024) over %s', (scheme) => {
  let service: SpawnedService | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await service?.kill('SIGKILL');
    service = undefined;
  });

  it('1,500 one-byte sockets from one address: the process lives, another phone and the stacker are served, the flood is closed', async () => {
    // Issue 19, point 1: these filled the fd table and an EMFILE thrown from a timer ended the process.
    const temp = await makeTempFolder();
    const pair = await makeTestCertificate();
    const env: Record<string, string> = { WORK_FOLDER: join(temp.path, 'work') };
    if (scheme === 'https') {
      await writeFile(join(temp.path, 'cert.pem'), pair.cert);
      await writeFile(join(temp.path, 'key.pem'), pair.key);
      Object.assign(env, { TLS_CERT_FILE: join(temp.path, 'cert.pem'), TLS_KEY_FILE: join(temp.path, 'key.pem') });
    }
    service = await spawnService(env, 60_000, { nofile: 1024, https: scheme === 'https' });
    const { port } = service;
    const flood = await oneByteSockets(scheme, port, '127.0.0.2', 1500);
    sockets.push(...flood.sockets);
    // All but the address's share (64 by default) are closed at accept.
    expect(await flood.untilClosed(1500 - 64, 10_000)).toBeGreaterThanOrEqual(1500 - 64);
    expect(service.child.exitCode).toBeNull();
    expect((await ask(scheme, port, { localAddress: '127.0.0.3', ca: pair.cert })).status).toBe(200);
    const upload = await ask(scheme, port, { path: '/api/image', method: 'PUT', localAddress: '127.0.0.1', ca: pair.cert, body: await makeJpeg(), headers: { 'content-type': 'image/jpeg' } });
    expect(upload.status).toBe(200);
    expect(service.child.exitCode).toBeNull();
    await temp.remove();
  });
});

/** `/status` from `localAddress` until it answers 200 (the server counts a socket gone once it closed). */
async function waitForStatus(scheme: Scheme, port: number, localAddress: string, ca: string): Promise<number> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const status = await ask(scheme, port, { localAddress, ca }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200 || Date.now() > deadline) {
      return status;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('limits', () => {
  let server: TestServer | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await server?.close();
    server = undefined;
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
async function waitForAdmission(wsUrl: string, localAddress: string, ca?: string): Promise<{ ws?: WebSocket; status: number }> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const attempt = await upgrade(wsUrl, localAddress, ca);
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
