import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import type { ImageServerOptions } from '../../src/config/image-server-options.js';
import { decodeStrictly } from '../fixtures/sample-images.js';
import { encodeFits } from '../fixtures/fits-writer.mjs';
import { encodeTiff } from '../fixtures/tiff-writer.mjs';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

const W = 600;
const H = 400;
/** PixInsight's target background: a stretched sky should land near 0.25 of full scale. */
const TARGET_LOW = 0.18 * 255;
const TARGET_HIGH = 0.32 * 255;

/** A linear stack as stackers save it: sky at ~3 % of full scale, noise, stars; `full` is white. */
function linearSky(channels: 1 | 3, full: number, sky = 0.03): Float32Array {
  const data = new Float32Array(W * H * channels);
  let seed = 7;
  const uniform = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  for (let i = 0; i < W * H; i++) {
    const star = uniform() < 0.002;
    for (let c = 0; c < channels; c++) {
      // Roughly Gaussian noise (sum of four uniforms), σ ≈ 0.3 % of full scale.
      const noise = (uniform() + uniform() + uniform() + uniform() - 2) * 0.005;
      const level = star ? 0.6 + 0.4 * uniform() : sky * (1 + 0.08 * c) + noise;
      data[i * channels + c] = Math.max(0, level) * full;
    }
  }
  return data;
}

/** The median of the published JPEG's brightness (grey), 0..255. */
async function medianBrightness(jpeg: Buffer): Promise<number> {
  const grey = await sharp(jpeg).greyscale().raw().toBuffer();
  return Uint8Array.from(grey).sort()[grey.length >> 1];
}

interface OnDisk {
  image: Buffer;
  data: string;
}

async function onDisk(server: TestServer): Promise<OnDisk> {
  return {
    image: await readFile(join(server.webFolder, 'web_image.jpg')),
    data: await readFile(join(server.webFolder, 'data.json'), 'utf8'),
  };
}

function put(server: TestServer, body: Buffer, type: string, query = ''): Promise<Response> {
  return fetch(`${server.baseUrl}/api/image${query}`, { method: 'PUT', headers: { 'Content-Type': type }, body: new Uint8Array(body) });
}

/** A FITS file from header cards (END added unless `end` is false) and raw data, padded to 2880-byte blocks. */
function handMadeFits(hdus: { cards: [string, string | number][]; data?: Buffer }[], { end = true } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const { cards, data = Buffer.alloc(0) } of hdus) {
    const lines = cards.map(([k, v]) => `${k.padEnd(8)}= ${String(v).padStart(20)}`.padEnd(80));
    const text = (end ? [...lines, 'END'.padEnd(80)] : lines).join('');
    parts.push(Buffer.from(text.padEnd(Math.ceil(text.length / 2880) * 2880), 'latin1'));
    parts.push(data, Buffer.alloc((2880 - (data.length % 2880)) % 2880));
  }
  return Buffer.concat(parts);
}

describe('FITS and the auto-stretch, end to end', () => {
  let server: TestServer | undefined;
  let client: RecordingClient | undefined;

  async function start(options: Partial<ImageServerOptions> = {}): Promise<TestServer> {
    server = await startTestServer(options);
    client = await RecordingClient.connect(server.wsUrl);
    return server;
  }

  afterEach(async () => {
    client?.close();
    await server?.close();
    server = undefined;
    client = undefined;
  });

  it.each<[string, 16 | -32, 1 | 3, string]>([
    ['16-bit grey', 16, 1, 'image/fits'],
    ['16-bit RGB', 16, 3, 'application/fits'],
    ['32-bit float grey', -32, 1, 'application/fits'],
    ['32-bit float RGB', -32, 3, 'image/fits'],
  ])('a linear %s FITS sent over HTTP is published stretched, with the metrics of its header', async (_what, bitpix, channels, type) => {
    const s = await start();
    const fits = encodeFits({ width: W, height: H, channels, bitpix, data: linearSky(channels, bitpix === 16 ? 65535 : 1), cards: { STACKCNT: 24, EXPTIME: 30 } });
    const res = await put(s, fits, type);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ published: true, stackSize: 24, exposure: 720 });
    await client?.waitFor((c) => c.count('new_image') === 1, 5000, 'new_image');
    const { image, data } = await onDisk(s);
    const decoded = await decodeStrictly(image);
    expect([decoded.format, decoded.width, decoded.height, decoded.channels]).toEqual(['jpeg', W, H, channels]);
    const median = await medianBrightness(image);
    expect(median).toBeGreaterThanOrEqual(TARGET_LOW);
    expect(median).toBeLessThanOrEqual(TARGET_HIGH);
    expect(JSON.parse(data)).toMatchObject({ STACK_SIZE: 24, EXPO: '0:12:00' });
  });

  it('takes LIVETIME, lets the query win over the header, and reads FITS through ImageNotifier.publish', async () => {
    const s = await start();
    const fits = encodeFits({ width: W, height: H, channels: 1, bitpix: -32, data: linearSky(1, 1), cards: { NCOMBINE: 9, LIVETIME: 1830 } });
    await s.notifier.publish(fits);
    expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 9, EXPO: '0:30:30' });
    expect((await put(s, fits, 'image/fits', '?stackSize=40')).status).toBe(200);
    expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 40, EXPO: '0:30:30' });
    expect((await put(s, fits, 'image/fits', '?stackSize=41&exposure=60')).status).toBe(200);
    expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 41, EXPO: '0:01:00' });
  });

  it('with stretch never (STRETCH=never), a linear FITS stays dark', async () => {
    const s = await start({ stretch: 'never' });
    const fits = encodeFits({ width: W, height: H, channels: 3, bitpix: 16, data: linearSky(3, 65535) });
    expect((await put(s, fits, 'image/fits')).status).toBe(200);
    // The sky at ~3 % of full scale: ≈ 8 of 255.
    expect(await medianBrightness((await onDisk(s)).image)).toBeLessThanOrEqual(12);
  });

  it('refuses damaged and unsupported FITS with a clear error and changes nothing on disk', async () => {
    const s = await start();
    await s.notifier.publish(encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535), cards: { STACKCNT: 3 } }));
    await client?.waitFor((c) => c.count('new_image') === 1, 5000, 'first new_image');
    const before = await onDisk(s);
    const good = encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535), cards: { STACKCNT: 99 } });
    const grey8x2 = [['SIMPLE', 'T'], ['BITPIX', 8], ['NAXIS', 2], ['NAXIS1', 8], ['NAXIS2', 2]] as [string, string | number][];
    const tileCompressed = handMadeFits([
      { cards: [['SIMPLE', 'T'], ['BITPIX', 8], ['NAXIS', 0]] },
      {
        cards: [['XTENSION', "'BINTABLE'"], ['BITPIX', 8], ['NAXIS', 2], ['NAXIS1', 8], ['NAXIS2', 1], ['PCOUNT', 0], ['GCOUNT', 1], ['TFIELDS', 1], ['ZIMAGE', 'T'], ['ZCMPTYPE', "'RICE_1'"]],
        data: Buffer.alloc(8),
      },
    ]);
    const cases: [string, Buffer, number, RegExp][] = [
      ['a FITS cut in its pixels', good.subarray(0, good.length - 5000), 422, /^truncated FITS/],
      ['a header with no END card', handMadeFits([{ cards: grey8x2, data: Buffer.alloc(16) }], { end: false }), 422, /no END card/],
      ['a FITS cut in its header', good.subarray(0, 400), 422, /no END card/],
      ['a tile-compressed FITS', tileCompressed, 415, /tile-compressed FITS \(\.fz\)/],
      ['SIMPLE = F', handMadeFits([{ cards: [['SIMPLE', 'F'], ...grey8x2.slice(1)], data: Buffer.alloc(16) }]), 415, /not a FITS file/],
    ];
    for (const [what, body, status, message] of cases) {
      const res = await put(s, body, 'image/fits');
      expect(res.status, what).toBe(status);
      expect(((await res.json()) as { message: string }).message, what).toMatch(message);
    }
    // The bytes decide, not the declared type.
    const asPng = await put(s, good, 'image/png');
    expect(asPng.status).toBe(415);
    expect(((await asPng.json()) as { message: string }).message).toMatch(/image\/png but the body is a FITS file/);
    expect(await onDisk(s)).toEqual(before);
    expect(client?.count('new_image')).toBe(1);
  });

  it('stretches a linear 16-bit PNG and TIFF under auto, never an 8-bit JPEG (not even with always)', async () => {
    const s = await start({ maxImageSize: 512 });
    const sky16 = Uint16Array.from(linearSky(3, 65535), (v) => Math.round(v));
    const tiff = encodeTiff({ width: W, height: H, channels: 3, bits: 16, data: sky16 });
    const png = await sharp(sky16, { raw: { width: W, height: H, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    for (const [what, body, type] of [
      ['TIFF', tiff, 'image/tiff'],
      ['PNG', png, 'image/png'],
    ] as const) {
      expect((await put(s, body, type)).status, what).toBe(200);
      const { image } = await onDisk(s);
      expect((await decodeStrictly(image)).width, what).toBe(512);
      const median = await medianBrightness(image);
      expect(median, what).toBeGreaterThanOrEqual(TARGET_LOW);
      expect(median, what).toBeLessThanOrEqual(TARGET_HIGH);
    }
    client?.close();
    await s.close();

    // A dark 8-bit JPEG larger than maxImageSize is re-encoded, and still not stretched.
    const always = await start({ maxImageSize: 512, stretch: 'always' });
    const sky8 = Uint8Array.from(linearSky(3, 255), (v) => Math.round(v));
    const jpeg = await sharp(sky8, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const darkBefore = await medianBrightness(jpeg);
    expect((await put(always, jpeg, 'image/jpeg')).status).toBe(200);
    const { image } = await onDisk(always);
    expect((await decodeStrictly(image)).width).toBe(512);
    expect(Math.abs((await medianBrightness(image)) - darkBefore)).toBeLessThanOrEqual(2);
  });

  it('a Siril stack in a watched folder is published stretched, with its header metrics over the watch count', async () => {
    const temp = await makeTempFolder();
    try {
      const s = await start({ watchPath: temp.path, watchSettleMs: 50, watchPollIntervalMs: 100, watchExposureSeconds: 10 });
      const stack = (count: number, livetime?: number): Buffer =>
        encodeFits({
          width: W,
          height: H,
          channels: 1,
          bitpix: 16,
          data: linearSky(1, 65535),
          cards: livetime === undefined ? {} : { STACKCNT: count, LIVETIME: livetime },
        });
      // An input frame next to the stack is never published.
      await writeFile(join(temp.path, 'live_stack_00002.fit'), stack(1, 5));
      await writeFile(join(temp.path, 'live_stack_00001.fit'), stack(12, 600));
      await client?.waitFor((c) => c.count('new_image') === 1, 10_000, 'the stack published');
      const { image, data } = await onDisk(s);
      expect(JSON.parse(data)).toMatchObject({ STACK_SIZE: 12, EXPO: '0:10:00' });
      const median = await medianBrightness(image);
      expect(median).toBeGreaterThanOrEqual(TARGET_LOW);
      expect(median).toBeLessThanOrEqual(TARGET_HIGH);
      // A stack without those cards falls back to the watch's own count.
      await writeFile(join(temp.path, 'live_stack_00001.fit'), stack(0));
      await client?.waitFor((c) => c.count('new_image') === 2, 10_000, 'the rewritten stack published');
      expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 2, EXPO: '0:00:20' });
    } finally {
      await temp.remove();
    }
  });

  it('a FITS with EXPTIME only: the exposure is EXPTIME times the stack size used, and never goes back', async () => {
    const temp = await makeTempFolder();
    try {
      const s = await start({ watchPath: temp.path, watchSettleMs: 50, watchPollIntervalMs: 100, watchExposureSeconds: 60 });
      const frame = (cards: Record<string, number>): Buffer => encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535), cards });
      // A JPEG first: the watch's own count and WATCH_EXPOSURE (1 x 60 s).
      await writeFile(join(temp.path, 'stack.jpg'), await sharp({ create: { width: 64, height: 48, channels: 3, background: '#203040' } }).jpeg().toBuffer());
      await client?.waitFor((c) => c.count('new_image') === 1, 10_000, 'the JPEG published');
      expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 1, EXPO: '0:01:00' });
      // Then the stacker's FITS, each with one frame's EXPTIME and no count: 2 x 50 s, then 3 x 50 s.
      await writeFile(join(temp.path, 'stack.fit'), frame({ EXPTIME: 50 }));
      await client?.waitFor((c) => c.count('new_image') === 2, 10_000, 'the first FITS published');
      expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 2, EXPO: '0:01:40' });
      await writeFile(join(temp.path, 'stack.fit'), frame({ EXPTIME: 50, FRAME: 2 }));
      await client?.waitFor((c) => c.count('new_image') === 3, 10_000, 'the second FITS published');
      expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 3, EXPO: '0:02:30' });
      // Over HTTP, a stack size given in the query is the one EXPTIME multiplies.
      const res = await put(s, frame({ EXPTIME: 50 }), 'image/fits', '?stackSize=14');
      expect(res.status).toBe(200);
      expect(JSON.parse((await onDisk(s)).data)).toMatchObject({ STACK_SIZE: 14, EXPO: '0:11:40' });
    } finally {
      await temp.remove();
    }
  });
});
