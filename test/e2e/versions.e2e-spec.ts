import type { PublishOptions } from '../../src/modules/image-notifier/image-notifier.service.js';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { makeTexturedJpeg } from '../fixtures/sample-images.js';
import { PyramidBuilder } from '../../src/modules/web-assets/pyramid.js';
import { VERSION_FILE } from '../../src/modules/web-assets/version-store.js';
import { VersionWriter, type CutImage } from '../../src/modules/publishing/version-writer.service.js';
import { makeJpeg } from '../helpers/images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

/** A GET with the path sent exactly as written (fetch would normalise `..` and `%2e`). */
function rawGet(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function json(url: string): Promise<Record<string, unknown>> {
  return (await (await fetch(url)).json()) as Record<string, unknown>;
}

/** Every tile a Deep Zoom pyramid of `width` × `height` holds, for tile size 510. */
function expectedTiles(width: number, height: number, tile = 510): number {
  let total = 0;
  let w = width;
  let h = height;
  for (;;) {
    total += Math.ceil(w / tile) * Math.ceil(h / tile);
    if (w === 1 && h === 1) {
      return total;
    }
    w = Math.ceil(w / 2);
    h = Math.ceil(h / 2);
  }
}

function isNewImage(message: unknown): boolean {
  return (message as { type?: unknown }).type === 'new_image';
}

function helloOf(client: RecordingClient): Record<string, unknown> | undefined {
  return client.messages.find((m) => (m as { type?: unknown }).type === 'hello') as Record<string, unknown> | undefined;
}

function countFiles(folder: string): number {
  return readdirSync(folder, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? countFiles(join(folder, e.name)) : 1), 0);
}

describe('versions: /v/<version>/ pyramids', () => {
  let server: TestServer | undefined;
  const clients: RecordingClient[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await server?.close();
    server = undefined;
    for (const cleanup of cleanups.splice(0)) {
      await cleanup();
    }
  });

  it('gives each publish a growing version in new_image, data.json and /status, with its pyramid complete before new_image', async () => {
    server = await startTestServer();
    const s = server;
    expect((await json(`${s.baseUrl}/status`)).version).toBeNull();
    expect(JSON.parse(await readFile(join(s.webFolder, 'data.json'), 'utf8'))).toMatchObject({ VERSION: null });
    const early = await RecordingClient.connect(s.wsUrl);
    clients.push(early);
    await early.waitFor((c) => helloOf(c) !== undefined);
    // The waiting image has no version: hello carries none.
    expect(helloOf(early)).not.toHaveProperty('version');

    // At the moment new_image arrives, the version's descriptor and every tile are on disk.
    const seenAtMessage: Array<{ version: number; dzi: boolean; tiles: number }> = [];
    const ws = new WebSocket(s.wsUrl);
    await new Promise((resolve) => ws.once('open', resolve));
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string; version?: number };
      if (message.type === 'new_image' && message.version !== undefined) {
        const folder = join(s.webFolder, 'v', String(message.version));
        seenAtMessage.push({
          version: message.version,
          dzi: existsSync(join(folder, 'image.dzi')),
          tiles: existsSync(folder) ? countFiles(join(folder, 'image_files')) : 0,
        });
      }
    });
    cleanups.push(() => {
      ws.close();
      return Promise.resolve();
    });

    await s.notifier.publish(await makeJpeg({ width: 900, height: 600 }), { stackSize: 3 });
    await s.notifier.publish(await makeJpeg({ width: 600, height: 900 }), { stackSize: 4 });
    await expect.poll(() => seenAtMessage.length).toBe(2);
    expect(seenAtMessage).toEqual([
      { version: 1, dzi: true, tiles: expectedTiles(900, 600) },
      { version: 2, dzi: true, tiles: expectedTiles(600, 900) },
    ]);
    expect(JSON.parse(await readFile(join(s.webFolder, 'data.json'), 'utf8'))).toMatchObject({ VERSION: 2, STACK_SIZE: 4 });
    expect((await json(`${s.baseUrl}/status`)).version).toBe(2);
    // A viewer connecting now learns the version at once (hello), before any new_image.
    const late = await RecordingClient.connect(s.wsUrl);
    clients.push(late);
    await late.waitFor((c) => helloOf(c) !== undefined);
    expect(helloOf(late)).toMatchObject({ type: 'hello', version: 2 });

    const dzi = await (await fetch(`${s.baseUrl}/v/2/image.dzi`)).text();
    expect(dzi).toContain('TileSize="510"');
    expect(dzi).toContain('Overlap="1"');
    expect(dzi).toMatch(/Width="600"\s+Height="900"|Height="900"\s+Width="600"/);
    // The deepest level's first tile is the image's own pixels at full size.
    const tile = await fetch(`${s.baseUrl}/v/2/image_files/10/0_0.jpeg`);
    expect(tile.status).toBe(200);
    expect(await sharp(Buffer.from(await tile.arrayBuffer())).metadata()).toMatchObject({ format: 'jpeg', width: 511, height: 511 });
    // No temp folder is left beside the versions.
    expect((await readdir(join(s.webFolder, 'v'))).sort()).toEqual(['1', '2']);
  });

  it('refuses a damaged JPEG while cutting its pyramid: no version taken, nothing left under v/, nothing announced', async () => {
    server = await startTestServer();
    const client = await RecordingClient.connect(server.wsUrl);
    clients.push(client);
    await server.notifier.publish(await makeJpeg({ width: 900, height: 600 }), { stackSize: 1 });
    const v = join(server.webFolder, 'v');
    const before = { folders: await readdir(v), data: await readFile(join(server.webFolder, 'data.json')), image: await readFile(join(server.webFolder, 'web_image.jpg')) };
    const jpeg = await makeTexturedJpeg({ width: 1200, height: 900, colour: { r: 40, g: 90, b: 160 } });
    const other = await makeTexturedJpeg({ width: 1200, height: 900, colour: { r: 200, g: 60, b: 20 }, quality: 70 });
    const cases: [string, Buffer][] = [
      // Signature, header and end marker are fine: only decoding every block finds these.
      ['cut in the middle, end marker kept', Buffer.concat([jpeg.subarray(0, jpeg.length >> 1), Buffer.from([0xff, 0xd9])])],
      ['overwritten in place by another JPEG', Buffer.concat([jpeg.subarray(0, jpeg.length >> 1), other.subarray(other.length >> 1)])],
    ];
    for (const [what, body] of cases) {
      // verify (removed) is still passed by apps written against the last round: it changes nothing.
      for (const verify of ['full', 'header'] as const) {
        const legacy = { verify } as unknown as PublishOptions;
        await expect(server.notifier.publish(body, { stackSize: 9 }, legacy), `${what}, verify ${verify}`).rejects.toThrow(/damaged JPEG|truncated JPEG/);
      }
      const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', body: new Uint8Array(body), headers: { 'Content-Type': 'image/jpeg' } });
      expect(res.status, what).toBe(422);
    }
    expect({ folders: await readdir(v), data: await readFile(join(server.webFolder, 'data.json')), image: await readFile(join(server.webFolder, 'web_image.jpg')) }).toEqual(before);
    expect((await json(`${server.baseUrl}/status`)).version).toBe(1);
    // No number was used up by the refusals.
    await server.notifier.publish(await makeJpeg());
    await client.waitFor((c) => c.count('new_image') === 2);
    expect(client.messages.filter(isNewImage)).toEqual([
      { type: 'new_image', version: 1 },
      { type: 'new_image', version: 2 },
    ]);
  });

  it("takes a publish's number while its pyramid is still cut (persisted before the cut ends), and gives it back when the cut fails", async () => {
    server = await startTestServer();
    await server.notifier.publish(await makeJpeg({ width: 900, height: 600 }), { stackSize: 1 });
    const counter = (): Promise<string> => readFile(join(server!.webFolder, VERSION_FILE), 'utf8');
    expect(await counter()).toBe('1\n');
    const writer = server.app.get(VersionWriter);
    let fail!: (err: Error) => void;
    const cutting = new Promise<CutImage>((_resolve, reject) => {
      fail = reject;
    });
    const writing = writer.writeImage(cutting);
    writing.catch(() => undefined);
    try {
      // The cut has not ended: its number is on the disk already.
      const deadline = Date.now() + 5000;
      while ((await counter()) !== '2\n' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(await counter()).toBe('2\n');
    } finally {
      // Always ended: a cut held for ever would hold the web folder's queue (and the test's close).
      fail(new Error('a cut that failed'));
    }
    await expect(writing).rejects.toThrow('a cut that failed');
    expect(await counter()).toBe('1\n');
    // The next publish gets that number: none is used up.
    await server.notifier.publish(await makeJpeg());
    expect((await json(`${server.baseUrl}/status`)).version).toBe(2);
  });

  it('carries the numbering on after a restart on the same web folder, never reusing a version', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const workFolder = join(temp.path, 'work');
    server = await startTestServer({ workFolder });
    await server.notifier.publish(await makeJpeg());
    await server.notifier.publish(await makeJpeg());
    await server.close();

    server = await startTestServer({ workFolder });
    const client = await RecordingClient.connect(server.wsUrl);
    clients.push(client);
    await server.notifier.publish(await makeJpeg({ color: { r: 1, g: 2, b: 3 } }));
    await client.waitFor((c) => c.count('new_image') === 1);
    expect(client.messages.filter(isNewImage)).toEqual([{ type: 'new_image', version: 3 }]);
    await server.close();

    // The counter file lost: the folders still hold the highest version.
    await unlink(join(workFolder, '.stackcast-version'));
    server = await startTestServer({ workFolder });
    await server.notifier.publish(await makeJpeg());
    expect((await json(`${server.baseUrl}/status`)).version).toBe(4);
    await server.close();

    // The folders removed: the counter file still holds it.
    server = await startTestServer({ workFolder });
    expect((await readdir(join(workFolder, 'v'))).length).toBeGreaterThan(0);
    await server.notifier.publish(await makeJpeg());
    expect((await json(`${server.baseUrl}/status`)).version).toBe(5);
  });

  it('a counter near 2^53 in the web folder does not fail the publishes: numbering starts over, each PUT answers 200 and its version is served', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const workFolder = join(temp.path, 'work');
    await mkdir(join(workFolder, 'v', '9007199254740990'), { recursive: true });
    await writeFile(join(workFolder, '.stackcast-version'), '9007199254740990\n');
    server = await startTestServer({ workFolder });
    for (let i = 1; i <= 5; i++) {
      const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(await makeJpeg()) });
      expect(res.status, await res.text()).toBe(200);
      expect((await json(`${server.baseUrl}/status`)).version).toBe(i);
      expect((await fetch(`${server.baseUrl}/v/${i}/image.dzi`)).status).toBe(200);
    }
    expect((await readdir(join(workFolder, 'v'))).filter((n) => /^\d+$/.test(n)).sort()).toEqual(['2', '3', '4', '5']);
  });

  it('keeps the newest four versions and answers 404 for older ones', async () => {
    server = await startTestServer();
    for (let i = 0; i < 7; i++) {
      await server.notifier.publish(await makeJpeg({ width: 300, height: 200 }));
    }
    // Pruned folders are renamed away at once (404 from then on), deleted in the background.
    await server.app.get(PyramidBuilder).idle();
    expect((await readdir(join(server.webFolder, 'v'))).sort()).toEqual(['4', '5', '6', '7']);
    for (const version of [1, 2, 3]) {
      const res = await fetch(`${server.baseUrl}/v/${version}/image.dzi`);
      expect(res.status).toBe(404);
      expect(res.headers.get('cache-control')).toBe('no-cache');
    }
    for (const version of [4, 5, 6, 7]) {
      expect((await fetch(`${server.baseUrl}/v/${version}/image.dzi`)).status).toBe(200);
    }
  });

  it('serves /v/ as immutable with a strong ETag, and 304 on revalidation', async () => {
    server = await startTestServer();
    await server.notifier.publish(await makeJpeg({ width: 1200, height: 900 }));
    for (const [path, type] of [
      ['/v/1/image.dzi', 'application/xml; charset=utf-8'],
      ['/v/1/image_files/0/0_0.jpeg', 'image/jpeg'],
      ['/v/1/image_files/11/1_0.jpeg', 'image/jpeg'],
    ]) {
      const res = await rawGet(server.baseUrl, path);
      expect(res.status, path).toBe(200);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(res.headers['content-type']).toBe(type);
      const etag = String(res.headers.etag);
      expect(etag).toMatch(/^"[^"]+"$/); // strong: no W/
      expect(Number(res.headers['content-length'])).toBe(res.body.length);
      const again = await rawGet(server.baseUrl, path, { 'If-None-Match': etag });
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
      expect(again.headers.etag).toBe(etag);
      expect(again.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    const head = await fetch(`${server.baseUrl}/v/1/image.dzi`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('never serves anything outside the version folders through /v/', async () => {
    server = await startTestServer();
    await server.notifier.publish(await makeJpeg({ width: 400, height: 300 }));
    const outside = await makeTempFolder('stackcast-outside-');
    cleanups.push(() => outside.remove());
    await writeFile(join(outside.path, 'image.dzi'), 'secret outside');
    await mkdir(join(outside.path, 'image_files', '0'), { recursive: true });
    await writeFile(join(outside.path, 'image_files', '0', '0_0.jpeg'), 'secret outside');
    // A version folder that is a symlink out, and a tile replaced by a symlink out.
    await symlink(outside.path, join(server.webFolder, 'v', '77'));
    const tile = join(server.webFolder, 'v', '1', 'image_files', '0', '0_0.jpeg');
    await unlink(tile);
    await symlink(join(outside.path, 'image_files', '0', '0_0.jpeg'), tile);
    // A file in a version folder that is not part of a pyramid.
    await writeFile(join(server.webFolder, 'v', '1', 'notes.txt'), 'not served');

    for (const path of [
      '/v/77/image.dzi',
      '/v/77/image_files/0/0_0.jpeg',
      '/v/1/image_files/0/0_0.jpeg',
      '/v/1/notes.txt',
      '/v/1/../../data.json',
      '/v/1/image_files/../../../data.json',
      '/v/%2e%2e/data.json',
      '/v/1/%2e%2e/%2e%2e/data.json',
      '/v/1/image_files%2f..%2f..%2fimage.dzi',
      '/v/..%2f..%2fetc%2fpasswd',
      '/v/abc/image.dzi',
      '/v/01/image.dzi',
      '/v/0/image.dzi',
      '/v/-1/image.dzi',
      '/v/1/image.dzi/',
      '/v/1/image_files/0/0_0.png',
      '/v/1/IMAGE.DZI',
      '/v/1',
      '/v/',
      '/v/.stackcast-version',
      '/v/1/image_files/0/0_0.jpeg%00.txt',
    ]) {
      const res = await rawGet(server.baseUrl, path);
      expect(res.status, path).toBe(404);
      expect(res.body.toString()).not.toContain('secret');
    }
    // The real files next to them are still served.
    expect((await rawGet(server.baseUrl, '/v/1/image.dzi')).status).toBe(200);
    expect((await rawGet(server.baseUrl, '/v/1/image.dzi?cache=bust')).status).toBe(200);
  });

  it('a FIFO put in place of a tile answers 404 at once and holds no libuv thread (8 requests at once)', async () => {
    server = await startTestServer();
    await server.notifier.publish(await makeTexturedJpeg({ width: 1200, height: 900, colour: { r: 90, g: 40, b: 160 } }));
    const tiles = join(server.webFolder, 'v', '1', 'image_files', '0');
    const [tile] = await readdir(tiles);
    await unlink(join(tiles, tile));
    execFileSync('mkfifo', [join(tiles, tile)]);
    const fifo = await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${server!.baseUrl}/v/1/image_files/0/${tile}`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status)),
    );
    expect(fifo).toEqual(Array(8).fill(404));
    // The pool is free: files are still read.
    const dzi = await fetch(`${server.baseUrl}/v/1/image.dzi`, { signal: AbortSignal.timeout(10_000) });
    expect(dzi.status).toBe(200);
  });

  it('answers 503 under /v/ while stopped, like every viewer route', async () => {
    server = await startTestServer();
    await server.notifier.publish(await makeJpeg());
    await server.lifecycle.stop();
    expect((await fetch(`${server.baseUrl}/v/1/image.dzi`)).status).toBe(503);
    await server.lifecycle.start();
    expect((await fetch(`${server.baseUrl}/v/1/image.dzi`)).status).toBe(200);
  });

  it('sends the viewer text files compressed (brotli or gzip) with Vary: Accept-Encoding', async () => {
    server = await startTestServer();
    for (const name of ['/', '/viewer.js', '/viewer.css', '/openseadragon.min.js']) {
      const plain = await rawGet(server.baseUrl, name, { 'Accept-Encoding': 'identity' });
      const br = await rawGet(server.baseUrl, name, { 'Accept-Encoding': 'gzip, deflate, br' });
      const gz = await rawGet(server.baseUrl, name, { 'Accept-Encoding': 'gzip' });
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(br.headers['content-encoding']).toBe('br');
      expect(gz.headers['content-encoding']).toBe('gzip');
      for (const res of [plain, br, gz]) {
        expect(res.status).toBe(200);
        expect(res.headers.vary).toBe('Accept-Encoding');
      }
      const { brotliDecompressSync, gunzipSync } = await import('node:zlib');
      expect(brotliDecompressSync(br.body)).toEqual(plain.body);
      expect(gunzipSync(gz.body)).toEqual(plain.body);
      expect(br.body.length).toBeLessThan(plain.body.length * 0.5);
      // Each encoding has its own validator.
      expect(br.headers.etag).not.toBe(plain.headers.etag);
      expect((await rawGet(server.baseUrl, name, { 'Accept-Encoding': 'br', 'If-None-Match': String(br.headers.etag) })).status).toBe(304);
    }
  });
});
