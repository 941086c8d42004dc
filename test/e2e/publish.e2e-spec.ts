import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageRejectedError, InvalidMetricsError } from '../../src/index.js';
import { averageColour, makeJpeg } from '../helpers/images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

describe('publishing an image', () => {
  let server: TestServer;
  const clients: RecordingClient[] = [];

  beforeEach(async () => {
    server = await startTestServer();
  });

  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await server.close();
  });

  it('writes every file of INTERFACE.md at START', async () => {
    const files = await readdir(server.webFolder);
    for (const name of ['index.html', 'favicon.ico', 'openseadragon.min.js', 'data.json', 'web_image.jpg']) {
      expect(files).toContain(name);
    }
    const icons = await readdir(join(server.webFolder, 'icons'));
    for (const base of ['fullpage', 'home', 'zoomin', 'zoomout']) {
      for (const state of ['rest', 'grouphover', 'hover', 'pressed']) {
        expect(icons).toContain(`${base}_${state}.png`);
      }
    }
    expect(JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 0, EXPO: '0:00:00' });
    const waiting = await readFile(join(server.webFolder, 'web_image.jpg'));
    expect(waiting.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    // Nothing is left half-written beside the files.
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('writes the JPEG byte for byte, updates data.json and notifies each of 50 clients exactly once', async () => {
    for (let i = 0; i < 50; i++) {
      clients.push(await RecordingClient.connect(server.wsUrl));
    }
    const jpeg = await makeJpeg({ width: 320, height: 240, color: { r: 10, g: 200, b: 60 } });
    await server.notifier.publish(jpeg, { stackSize: 12, exposureSeconds: 3725 });

    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(jpeg);
    expect(JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 12, EXPO: '1:02:05' });
    await Promise.all(clients.map((c) => c.waitFor((x) => x.count('new_image') >= 1, 5000, 'new_image')));
    // A second publish: a duplicate of the first message would show up before its message.
    await server.notifier.publish(await makeJpeg({ color: { r: 1, g: 1, b: 1 } }));
    await Promise.all(clients.map((c) => c.waitFor((x) => x.count('new_image') >= 2, 5000, 'second new_image')));
    for (const c of clients) {
      expect(c.messages.filter((m) => !['hello', 'viewers'].includes((m as { type: string }).type))).toEqual([{ type: 'new_image', version: 1 }, { type: 'new_image', version: 2 }]);
      expect(c.rawFrames.every((f) => !f.isBinary)).toBe(true);
    }
  });

  it('serves the new image and data.json over HTTP with revalidation headers', async () => {
    const jpeg = await makeJpeg({ color: { r: 250, g: 250, b: 0 } });
    await server.notifier.publish(jpeg, { stackSize: 3, exposureSeconds: 30 });
    const res = await fetch(`${server.baseUrl}/web_image.jpg`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const etag = res.headers.get('etag');
    expect(etag).toBeTruthy();
    expect(res.headers.get('last-modified')).toBeTruthy();
    expect(Buffer.from(await res.arrayBuffer())).toEqual(jpeg);

    const again = await fetch(`${server.baseUrl}/web_image.jpg`, { headers: { 'If-None-Match': etag! } });
    expect(again.status).toBe(304);

    const data = await fetch(`${server.baseUrl}/data.json`);
    expect(data.headers.get('cache-control')).toBe('no-cache');
    expect(await data.json()).toMatchObject({ STACK_SIZE: 3, EXPO: '0:00:30' });

    await server.notifier.publish(await makeJpeg({ color: { r: 0, g: 0, b: 250 } }));
    const changed = await fetch(`${server.baseUrl}/web_image.jpg`, { headers: { 'If-None-Match': etag! } });
    expect(changed.status).toBe(200);
    expect((await averageColour(Buffer.from(await changed.arrayBuffer()))).b).toBeGreaterThan(200);
  });

  it('keeps metrics that a publish leaves out, and updateMetrics rewrites data.json and notifies', async () => {
    const client = await RecordingClient.connect(server.wsUrl);
    clients.push(client);
    await server.notifier.publish(await makeJpeg(), { stackSize: 5, exposureSeconds: 50 });
    await server.notifier.publish(await makeJpeg());
    expect(JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 5, EXPO: '0:00:50' });
    await server.notifier.updateMetrics({ stackSize: 6, exposureSeconds: 93_784 });
    expect(JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8'))).toMatchObject({ STACK_SIZE: 6, EXPO: '26:03:04' });
    await client.waitFor((c) => c.count('new_image') === 3, 5000, 'three new_image');
  });

  it('notifyNewImage takes in a web_image.jpg the caller wrote itself', async () => {
    const client = await RecordingClient.connect(server.wsUrl);
    clients.push(client);
    const jpeg = await makeJpeg({ color: { r: 0, g: 255, b: 255 } });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(server.webFolder, 'web_image.jpg'), jpeg);
    await server.notifier.notifyNewImage();
    await client.waitFor((c) => c.count('new_image') === 1);
    const res = await fetch(`${server.baseUrl}/web_image.jpg`);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(jpeg);
  });

  it('concurrent publishes are serialized: the image and data.json on disk belong to the same one', async () => {
    const colours = [
      { r: 255, g: 0, b: 0 },
      { r: 0, g: 255, b: 0 },
      { r: 0, g: 0, b: 255 },
      { r: 255, g: 255, b: 0 },
    ];
    const images = await Promise.all(colours.map((color) => makeJpeg({ color })));
    await Promise.all(images.map((img, i) => server.notifier.publish(img, { stackSize: i + 1 })));
    const onDisk = await readFile(join(server.webFolder, 'web_image.jpg'));
    const data = JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8')) as { STACK_SIZE: number };
    // The last call wins, and data.json belongs to the same call as the image.
    expect(onDisk).toEqual(images[3]);
    expect(data.STACK_SIZE).toBe(4);
  });

  it('refuses what it cannot use and changes nothing on disk', async () => {
    const good = await makeJpeg({ color: { r: 1, g: 2, b: 3 } });
    await server.notifier.publish(good, { stackSize: 2, exposureSeconds: 20 });
    const before = await readFile(join(server.webFolder, 'web_image.jpg'));
    const beforeData = await readFile(join(server.webFolder, 'data.json'), 'utf8');
    const truncated = good.subarray(0, Math.floor(good.length / 2));
    const headerOnly = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46]);
    const attempts: [string, () => Promise<void>, new (...args: never[]) => Error][] = [
      ['garbage', () => server.notifier.publish(Buffer.from('definitely not an image')), ImageRejectedError],
      ['truncated', () => server.notifier.publish(truncated), ImageRejectedError],
      ['header only', () => server.notifier.publish(headerOnly), ImageRejectedError],
      ['empty', () => server.notifier.publish(Buffer.alloc(0)), ImageRejectedError],
      ['bad metrics', () => server.notifier.publish(good, { stackSize: -1 }), InvalidMetricsError],
      ['bad exposure', () => server.notifier.publish(good, { exposureSeconds: Number.NaN }), InvalidMetricsError],
    ];
    for (const [what, attempt, errorClass] of attempts) {
      await expect(attempt(), what).rejects.toBeInstanceOf(errorClass);
    }
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(before);
    expect(await readFile(join(server.webFolder, 'data.json'), 'utf8')).toBe(beforeData);
    const served = await fetch(`${server.baseUrl}/web_image.jpg`);
    expect(Buffer.from(await served.arrayBuffer())).toEqual(before);
  });
});
