import type { PublishOptions } from '../../src/modules/image-notifier/image-notifier.service.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeTo, decodeStrictly, makeTexturedJpeg, makeTexturedPng, makeTexturedTiff, type Rgb } from '../fixtures/sample-images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const RED = { r: 210, g: 40, b: 30 };
const TEAL = { r: 30, g: 160, b: 170 };

interface OnDisk {
  image: Buffer;
  data: string;
  served: Buffer;
}

async function onDisk(server: TestServer): Promise<OnDisk> {
  const served = Buffer.from(await (await fetch(`${server.baseUrl}/web_image.jpg`)).arrayBuffer());
  return {
    image: await readFile(join(server.webFolder, 'web_image.jpg')),
    data: await readFile(join(server.webFolder, 'data.json'), 'utf8'),
    served,
  };
}

function put(server: TestServer, body: Buffer, type: string, query = ''): Promise<Response> {
  return fetch(`${server.baseUrl}/api/image${query}`, { method: 'PUT', headers: { 'Content-Type': type }, body: new Uint8Array(body) });
}

describe('PUT /api/image and ImageNotifier.publish with PNG, TIFF and JPEG', () => {
  let server: TestServer;
  let client: RecordingClient;

  beforeEach(async () => {
    server = await startTestServer({ maxImageSize: 1024 });
    client = await RecordingClient.connect(server.wsUrl);
  });

  afterEach(async () => {
    client.close();
    await server.close();
  });

  it.each<[string, string, () => Promise<Buffer>, Rgb, number]>([
    ['8-bit PNG', 'image/png', () => makeTexturedPng({ colour: RED }), RED, 3],
    ['16-bit PNG', 'image/png', () => makeTexturedPng({ colour: RED, bits: 16 }), RED, 3],
    ['16-bit RGB TIFF', 'image/tiff', () => Promise.resolve(makeTexturedTiff({ colour: TEAL })), TEAL, 3],
    ['16-bit grey TIFF', 'image/tiff', () => Promise.resolve(makeTexturedTiff({ colour: { r: 90, g: 90, b: 90 }, grey: true })), { r: 90, g: 90, b: 90 }, 1],
  ])('a %s sent as %s is published as a JPEG that looks the same', async (_what, type, make, colour, channels) => {
    const res = await put(server, await make(), type, '?stackSize=7&exposure=420');
    expect(res.status).toBe(200);
    await client.waitFor((c) => c.count('new_image') === 1, 5000, 'new_image');
    const { image, data, served } = await onDisk(server);
    expect(served.equals(image)).toBe(true);
    const decoded = await decodeStrictly(image);
    expect(decoded.format).toBe('jpeg');
    expect([decoded.width, decoded.height, decoded.channels]).toEqual([256, 192, channels]);
    expect(closeTo(decoded.mean, colour, 4), JSON.stringify(decoded.mean)).toBe(true);
    expect(JSON.parse(data)).toMatchObject({ STACK_SIZE: 7, EXPO: '0:07:00' });
  });

  it('passes a JPEG within the size limit through byte for byte, over HTTP and through the notifier', async () => {
    const viaHttp = await makeTexturedJpeg({ colour: RED, width: 1024, height: 768 });
    expect((await put(server, viaHttp, 'image/jpeg')).status).toBe(200);
    expect((await onDisk(server)).served.equals(viaHttp)).toBe(true);
    const viaNotifier = await makeTexturedJpeg({ colour: TEAL });
    await server.notifier.publish(viaNotifier, { stackSize: 2 });
    const after = await onDisk(server);
    expect(after.image.equals(viaNotifier)).toBe(true);
    expect(after.served.equals(viaNotifier)).toBe(true);
    await client.waitFor((c) => c.count('new_image') === 2, 5000, 'two new_image');
  });

  it('downsizes a larger image to maxImageSize on its long side', async () => {
    const big = makeTexturedTiff({ colour: TEAL, width: 2000, height: 1500 });
    expect((await put(server, big, 'image/tiff')).status).toBe(200);
    const decoded = await decodeStrictly((await onDisk(server)).image);
    expect([decoded.width, decoded.height]).toEqual([1024, 768]);
    const bigJpeg = await makeTexturedJpeg({ colour: RED, width: 1600, height: 1200 });
    await server.notifier.publish(bigJpeg);
    const again = await decodeStrictly((await onDisk(server)).image);
    expect([again.width, again.height]).toEqual([1024, 768]);
    expect(closeTo(again.mean, RED, 4)).toBe(true);
  });

  it('refuses corrupt and truncated images of every format, leaving the previous image, data.json and the served file as they were', async () => {
    await server.notifier.publish(await makeTexturedJpeg({ colour: RED }), { stackSize: 3, exposureSeconds: 90 });
    const before = await onDisk(server);
    const png = await makeTexturedPng({ colour: TEAL, bits: 16 });
    const tiff = makeTexturedTiff({ colour: TEAL });
    const tiffIfdFirst = makeTexturedTiff({ colour: TEAL, ifdFirst: true });
    const jpeg = await makeTexturedJpeg({ colour: TEAL });
    const damagedPng = Buffer.from(png);
    damagedPng[damagedPng.length >> 1] ^= 0x5a;
    const cases: [string, string, Buffer][] = [
      ['truncated PNG', 'image/png', png.subarray(0, png.length >> 1)],
      ['PNG without IEND', 'image/png', png.subarray(0, png.length - 12)],
      ['damaged PNG', 'image/png', damagedPng],
      ['truncated TIFF', 'image/tiff', tiff.subarray(0, tiff.length - 100)],
      ['truncated TIFF, directory first', 'image/tiff', tiffIfdFirst.subarray(0, tiffIfdFirst.length - 100)],
      ['truncated JPEG', 'image/jpeg', jpeg.subarray(0, jpeg.length - 200)],
      ['JPEG cut in the middle, end marker kept', 'image/jpeg', Buffer.concat([jpeg.subarray(0, jpeg.length >> 1), Buffer.from([0xff, 0xd9])])],
    ];
    for (const [what, type, body] of cases) {
      const res = await put(server, body, type);
      expect(res.status, what).toBe(422);
      expect(((await res.json()) as { message: string }).message, what).toMatch(/truncated|damaged/);
      await expect(server.notifier.publish(body), what).rejects.toThrow(/truncated|damaged/);
      // Every block is decoded while the pyramid is cut, whatever the removed `verify` says.
      await expect(server.notifier.publish(body, {}, { verify: 'header' } as unknown as PublishOptions), what).rejects.toThrow(/truncated|damaged/);
    }
    expect(await onDisk(server)).toEqual(before);
    expect(client.count('new_image')).toBe(1);
  });

  it('answers 415 to another type, and to bytes that are not what Content-Type says', async () => {
    const png = await makeTexturedPng({ colour: RED });
    const before = await onDisk(server);
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');
    for (const [what, type, body] of [
      ['a GIF', 'image/gif', gif],
      ['a PNG said to be a TIFF', 'image/tiff', png],
      ['a TIFF said to be a PNG', 'image/png', makeTexturedTiff({ colour: RED })],
      ['text said to be a PNG', 'image/png', Buffer.from('not an image at all')],
    ] as const) {
      const res = await put(server, body, type);
      expect(res.status, what).toBe(415);
      expect(((await res.json()) as { message: string }).message, what).toBeTruthy();
    }
    expect(await onDisk(server)).toEqual(before);
  });

  it('lands publishes in call order even when the later image converts faster', async () => {
    const slow = makeTexturedTiff({ colour: RED, width: 3000, height: 2000 });
    const fast = await makeTexturedJpeg({ colour: TEAL });
    const order: string[] = [];
    const a = server.notifier.publish(slow, { stackSize: 1 }).then(() => order.push('slow'));
    const b = server.notifier.publish(fast, { stackSize: 2 }).then(() => order.push('fast'));
    await Promise.all([a, b]);
    expect(order).toEqual(['slow', 'fast']);
    const { image, data } = await onDisk(server);
    expect(image.equals(fast)).toBe(true);
    expect(JSON.parse(data)).toMatchObject({ STACK_SIZE: 2 });
    await client.waitFor((c) => c.count('new_image') === 2, 5000, 'two new_image');
  });

  it('a failed conversion does not hold up or reorder the publishes after it', async () => {
    const broken = makeTexturedTiff({ colour: RED }).subarray(0, 500);
    const good = await makeTexturedJpeg({ colour: TEAL });
    const results = await Promise.allSettled([server.notifier.publish(broken), server.notifier.publish(good, { stackSize: 9 })]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect((await onDisk(server)).image.equals(good)).toBe(true);
  });

  it('a metric update takes its turn after a slow publish called before it, so the later call wins', async () => {
    const slow = makeTexturedTiff({ colour: RED, width: 4000, height: 3000 });
    const order: string[] = [];
    const publishing = server.notifier.publish(slow, { stackSize: 1 }).then(() => order.push('publish'));
    await server.notifier.updateMetrics({ stackSize: 5 }).then(() => order.push('metrics'));
    await publishing;
    expect(order).toEqual(['publish', 'metrics']);
    // Called last, the metric update is what data.json says.
    expect(JSON.parse((await onDisk(server)).data)).toMatchObject({ STACK_SIZE: 5 });
  });
});
