import { request as httpRequest } from 'node:http';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg, makePng } from '../helpers/images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

/** A raw request, so paths reach the server exactly as written (fetch normalizes `..`). */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function snapshot(server: TestServer): Promise<[Buffer, string]> {
  return [await readFile(join(server.webFolder, 'web_image.jpg')), await readFile(join(server.webFolder, 'data.json'), 'utf8')];
}

describe('PUT /api/image (no token: loopback only)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ maxImageBytes: 200_000 });
  });
  afterAll(() => server.close());

  it('publishes a JPEG with absolute metrics and answers once the files are on disk and the broadcast sent', async () => {
    const client = await RecordingClient.connect(server.wsUrl);
    const jpeg = await makeJpeg({ color: { r: 12, g: 34, b: 56 } });
    const res = await fetch(`${server.baseUrl}/api/image?stackSize=7&exposure=420.4`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: new Uint8Array(jpeg),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ published: true, stackSize: 7, exposure: 420.4 });
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(jpeg);
    expect(JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 7, EXPO: '0:07:00' });
    await client.waitFor((c) => c.count('new_image') === 1);
    client.close();
    const status = (await (await fetch(`${server.baseUrl}/status`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ status: 'running', stackSize: 7, exposure: '0:07:00' });
  });

  it.each([
    ['stackSize=-1', 400],
    ['stackSize=1.5', 400],
    ['stackSize=abc', 400],
    ['exposure=-3', 400],
    ['exposure=1e400', 400],
    ['exposure=NaN', 400],
    ['stackSize=1&stackSize=2', 400],
  ])('a bad query (%s) gets %i and changes nothing', async (query, code) => {
    const before = await snapshot(server);
    const res = await fetch(`${server.baseUrl}/api/image?${query}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: new Uint8Array(await makeJpeg()),
    });
    expect(res.status).toBe(code);
    expect(((await res.json()) as { message: string }).message).toMatch(/stackSize|exposure/);
    expect(await snapshot(server)).toEqual(before);
  });

  it('refuses garbage, truncated, empty, wrongly typed and oversized bodies, changing nothing', async () => {
    const before = await snapshot(server);
    const jpeg = await makeJpeg();
    const cases: [string, string, Buffer, number][] = [
      ['garbage as jpeg', 'image/jpeg', Buffer.from('hello, not an image at all'), 415],
      ['truncated jpeg', 'image/jpeg', jpeg.subarray(0, jpeg.length - 40), 422],
      ['empty body', 'image/jpeg', Buffer.alloc(0), 400],
      ['text body', 'text/plain', Buffer.from('hello'), 415],
      ['no content type', '', jpeg, 415],
      ['oversized', 'image/jpeg', Buffer.concat([jpeg, Buffer.alloc(300_000)]), 413],
    ];
    for (const [what, type, body, code] of cases) {
      const headers: Record<string, string> = type ? { 'Content-Type': type } : {};
      const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers, body: new Uint8Array(body) });
      expect(res.status, what).toBe(code);
      expect(((await res.json()) as { message: string }).message, what).toBeTruthy();
    }
    expect(await snapshot(server)).toEqual(before);
  });

  it('an oversized upload gets 413 with Connection: close, not a drain of the whole body', async () => {
    const res = await fetch(`${server.baseUrl}/api/image`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: new Uint8Array(1_000_000),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
  });

  it('a PNG sent as image/jpeg is refused as the wrong type', async () => {
    const before = await snapshot(server);
    const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(await makePng()) });
    expect(res.status).toBe(415);
    expect(await snapshot(server)).toEqual(before);
  });
});

describe('control routes without a token', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it.each([
    ['a page of another site (CSRF)', { Origin: 'http://evil.example' }],
    ['Fetch metadata: cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
    ['a local reverse proxy', { 'X-Forwarded-For': '203.0.113.9' }],
  ])('%s gets 403 from loopback and nothing changes', async (_what, headers) => {
    const before = await snapshot(server);
    const stop = await fetch(`${server.baseUrl}/api/server/stop`, { method: 'POST', headers: { 'Content-Type': 'text/plain', ...headers } });
    expect(stop.status).toBe(403);
    expect(((await stop.json()) as { message: string }).message).toMatch(/CONTROL_TOKEN/);
    const put = await fetch(`${server.baseUrl}/api/image?stackSize=99`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg', ...headers }, body: new Uint8Array(await makeJpeg()) });
    expect(put.status).toBe(403);
    expect(server.lifecycle.state).toBe('running');
    expect(await snapshot(server)).toEqual(before);
  });

  it('a rebound DNS name (a foreign Host header) gets 403', async () => {
    // fetch() cannot set Host: a raw request can.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: server.port, path: '/api/server/stop', method: 'POST', headers: { Host: 'attacker.example' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
    expect(server.lifecycle.state).toBe('running');
  });
});

describe('control routes with a CONTROL_TOKEN', () => {
  const token = 'a-very-secret-token-0123';
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ controlToken: token });
  });
  afterAll(() => server.close());

  it.each([
    ['no header', undefined],
    ['wrong token', 'Bearer not-the-token-at-all-xx'],
    ['token without Bearer', token],
    ['token with a suffix', `Bearer ${token}x`],
  ])('%s -> 401 and nothing changes', async (_what, authorization) => {
    const before = await snapshot(server);
    const headers: Record<string, string> = { 'Content-Type': 'image/jpeg' };
    if (authorization) {
      headers.Authorization = authorization;
    }
    const put = await fetch(`${server.baseUrl}/api/image?stackSize=99`, { method: 'PUT', headers, body: new Uint8Array(await makeJpeg()) });
    expect(put.status).toBe(401);
    const stop = await fetch(`${server.baseUrl}/api/server/stop`, { method: 'POST', headers });
    expect(stop.status).toBe(401);
    expect(server.lifecycle.state).toBe('running');
    expect(await snapshot(server)).toEqual(before);
  });

  it('the right token publishes', async () => {
    const jpeg = await makeJpeg({ color: { r: 99, g: 1, b: 1 } });
    const res = await fetch(`${server.baseUrl}/api/image?stackSize=1`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${token}` },
      body: new Uint8Array(jpeg),
    });
    expect(res.status).toBe(200);
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(jpeg);
  });
});

describe('serving the web folder', () => {
  let server: TestServer;
  let outside: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    outside = await makeTempFolder('stackcast-outside-');
    await writeFile(join(outside.path, 'secret.txt'), 'TOP-SECRET-OUTSIDE');
    server = await startTestServer();
    await symlink(join(outside.path, 'secret.txt'), join(server.webFolder, 'leak.txt'));
    await symlink(outside.path, join(server.webFolder, 'leakdir'));
    await writeFile(join(server.webFolder, '.hidden'), 'TOP-SECRET-DOTFILE');
    await mkdir(join(server.webFolder, '.git'), { recursive: true });
    await writeFile(join(server.webFolder, '.git', 'config'), 'TOP-SECRET-GIT');
  });
  afterAll(async () => {
    await server.close();
    await outside.remove();
  });

  it('GET / is the viewer, and the viewer files are served', async () => {
    const root = await fetch(`${server.baseUrl}/`);
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/text\/html/);
    expect(await root.text()).toMatch(/<html/i);
    for (const path of ['/index.html', '/openseadragon.min.js', '/favicon.ico', '/icons/zoomin_rest.png', '/data.json', '/web_image.jpg']) {
      const res = await fetch(`${server.baseUrl}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('etag'), path).toBeTruthy();
    }
  });

  it('a missing file is a 404, never the viewer page', async () => {
    for (const path of ['/nope.jpg', '/icons/nope.png', '/some/deep/route', '/index.htm', '/icons/']) {
      const res = await rawGet(server.port, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toMatch(/<html/i);
    }
  });

  it('never returns anything outside the web folder', async () => {
    const attempts = [
      '/../../../../etc/passwd',
      '/..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/icons/..%2f..%2f..%2fetc%2fpasswd',
      '/..%5c..%5c..%5cetc%5cpasswd',
      '/icons\\..\\..\\etc\\passwd',
      '//etc/passwd',
      '/%2fetc%2fpasswd',
      `/${encodeURIComponent('/etc/passwd')}`,
      '/leak.txt',
      '/leakdir/secret.txt',
      '/.hidden',
      '/.git/config',
      '/%2ehidden',
      '/web_image.jpg%00.txt',
    ];
    for (const path of attempts) {
      const res = await rawGet(server.port, path);
      expect([400, 403, 404], path).toContain(res.status);
      expect(res.body, path).not.toMatch(/root:|TOP-SECRET/);
    }
  });

  it('only the files START published are served, not whatever else the folder holds', async () => {
    await writeFile(join(server.webFolder, 'notes.txt'), 'the stacker\'s own notes');
    await mkdir(join(server.webFolder, 'raw'), { recursive: true });
    await writeFile(join(server.webFolder, 'raw', 'light_001.fits'), 'SIMPLE = T');
    for (const path of ['/notes.txt', '/raw/light_001.fits']) {
      const res = await rawGet(server.port, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toMatch(/own notes|SIMPLE/);
    }
  });

  it('unknown methods on viewer files do not modify them', async () => {
    const before = await readFile(join(server.webFolder, 'index.html'));
    const res = await fetch(`${server.baseUrl}/index.html`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(404);
    expect(await readFile(join(server.webFolder, 'index.html'))).toEqual(before);
  });
});
