import { threadId, type Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { encodeFits } from '../../../test/fixtures/fits-writer.mjs';
import { encodeTiff } from '../../../test/fixtures/tiff-writer.mjs';
import { ImageConverter, type PublishableImage } from './image-converter.service.js';
import { ImageRejectedError } from './image-rejected.error.js';
import { PixelWorkers } from './pixel-workers.service.js';
import { shrinkToLevel } from '../web-assets/pyramid-levels.js';

const W = 320;
const H = 240;

/** A linear sky (about 3 % of `full`) with noise and a few stars: what the auto-stretch is for. */
function linearSky(channels: 1 | 3, full: number): Float32Array {
  const data = new Float32Array(W * H * channels);
  let seed = 11;
  const uniform = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.round((uniform() < 0.002 ? 0.7 : 0.03 + (uniform() - 0.5) * 0.01) * full);
  }
  return data;
}

const INPUTS: [string, () => Buffer][] = [
  ['16-bit grey FITS', () => encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535) })],
  ['16-bit RGB FITS', () => encodeFits({ width: W, height: H, channels: 3, bitpix: 16, data: linearSky(3, 65535) })],
  ['float FITS', () => encodeFits({ width: W, height: H, channels: 1, bitpix: -32, data: linearSky(1, 1) })],
  ['linear 16-bit RGB TIFF', () => encodeTiff({ width: W, height: H, channels: 3, bits: 16, data: linearSky(3, 65535) })],
  ['linear 16-bit grey TIFF', () => encodeTiff({ width: W, height: H, channels: 1, bits: 16, data: linearSky(1, 65535) })],
  ['32-bit float RGB TIFF', () => encodeTiff({ width: W, height: H, channels: 3, bits: 32, float: true, data: linearSky(3, 1) })],
];

describe('PixelWorkers (the publish path\'s pixel loops off the main thread)', () => {
  const options = resolveImageServerOptions({});
  const workers = new PixelWorkers();
  const inWorker = new ImageConverter(options, workers);
  const inline = new ImageConverter(options);
  afterAll(() => workers.onApplicationShutdown());

  it.each(INPUTS)('converts a %s to the same bytes with and without the worker, on the worker thread', async (_what, make) => {
    const input = make();
    const copy = Buffer.from(input);
    const before = workers.completed;
    const viaWorker: PublishableImage = await inWorker.toPublishable(input);
    expect(workers.completed).toBeGreaterThan(before);
    expect(workers.lastThreadId).toBeDefined();
    expect(workers.lastThreadId).not.toBe(threadId);
    // The caller's buffer is untouched (the worker got a copy or sharp's own output).
    expect(input.equals(copy)).toBe(true);
    const here = await inline.toPublishable(input);
    expect(viaWorker.jpeg.equals(here.jpeg)).toBe(true);
    expect({ ...viaWorker, jpeg: undefined }).toEqual({ ...here, jpeg: undefined });
  });

  it.each([
    ['cut in its data', (fits: Buffer) => fits.subarray(0, fits.length - 2880 * 2)],
    ['with NAXIS1 over the pixel limit', (fits: Buffer) => Buffer.from(fits.toString('latin1').replace(/NAXIS1  =\s+\d+/, `NAXIS1  = ${'99999999'.padStart(20)}`), 'latin1')],
    ['with BITPIX 12', (fits: Buffer) => Buffer.from(fits.toString('latin1').replace(/BITPIX  =\s+16/, `BITPIX  = ${'12'.padStart(20)}`), 'latin1')],
  ])('refuses a FITS %s with the same ImageRejectedError as on the main thread', async (_what, damage) => {
    const bad = damage(encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535) }));
    const before = workers.completed;
    const there = await inWorker.toPublishable(bad).then(() => undefined, (e: unknown) => e);
    expect(workers.completed).toBe(before + 1);
    const here = await inline.toPublishable(bad).then(() => undefined, (e: unknown) => e);
    expect(here).toBeInstanceOf(ImageRejectedError);
    expect(there).toBeInstanceOf(ImageRejectedError);
    expect({ reason: (there as ImageRejectedError).reason, message: (there as Error).message }).toEqual({
      reason: (here as ImageRejectedError).reason,
      message: (here as Error).message,
    });
  });

  it.each([
    // A FITS is downsized after its stretch (its pixels are not the JPEG's then); a TIFF before it, in libvips.
    [...INPUTS[1], undefined],
    [...INPUTS[4], { width: 100, height: 75 }],
  ] as const)('shrinks a %s to the pyramid\'s home level on the worker too: the same pixels as here, those of shrinkToLevel', async (_what, make, downsizedHome) => {
    const input = make();
    const small = resolveImageServerOptions({ homeLevelSize: 100 });
    const before = workers.completed;
    const there = await new ImageConverter(small, workers).start(input, { homeLevel: true });
    expect(workers.completed).toBe(before + 1);
    expect(workers.lastThreadId).not.toBe(threadId);
    const here = await new ImageConverter(small).start(input, { homeLevel: true });
    const channels = there.pixels!.raw.channels;
    // 320×240: level 9 is the image, 8 is 160×120, 7 is 80×60 (at most 100 px).
    expect(there.pixels?.home?.raw).toEqual({ width: 80, height: 60, channels });
    expect(there.pixels!.home!.data.equals(here.pixels!.home!.data)).toBe(true);
    expect(shrinkToLevel({ data: there.pixels!.data, raw: { ...there.pixels!.raw, channels: channels as 1 | 3 } }, 7).data.equals(there.pixels!.home!.data)).toBe(true);
    expect((await there.jpeg).equals(await here.jpeg)).toBe(true);
    // Not asked for (a publish that stores the JPEG first: Redis), or when the home level is the
    // image itself (the default 2048 px): none.
    const unasked = await new ImageConverter(small, workers).start(input);
    expect(unasked.pixels?.raw).toEqual({ width: W, height: H, channels });
    expect(unasked.pixels?.home).toBeUndefined();
    const whole = await new ImageConverter(options, workers).start(input, { homeLevel: true });
    expect(whole.pixels?.raw).toEqual({ width: W, height: H, channels });
    expect(whole.pixels?.home).toBeUndefined();
    // Downsized to maxImageSize: a FITS after its stretch (no pixels of the JPEG's size, so no
    // home level), a TIFF before it in libvips (the home level of the pixels at 200×150).
    const downsized = await new ImageConverter(resolveImageServerOptions({ homeLevelSize: 100, maxImageSize: 200 }), workers).start(input, { homeLevel: true });
    if (downsizedHome) {
      expect(downsized.pixels?.home?.raw).toEqual({ ...downsizedHome, channels });
    } else {
      expect(downsized.pixels).toBeUndefined();
    }
    await Promise.all([unasked.jpeg, whole.jpeg, downsized.jpeg]);
  });

  it('replaces a worker that dies: its task fails, the next one runs on a new thread', async () => {
    const fits = encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535) });
    await inWorker.toPublishable(fits);
    const first = workers.lastThreadId;
    const worker = (workers as unknown as { worker: Worker }).worker;
    const inFlight = inWorker.toPublishable(fits).then(() => 'done', (e: unknown) => (e instanceof Error ? e.message : String(e)));
    await worker.terminate();
    expect(await inFlight).toMatch(/done|pixel worker exited/);
    const again = await inWorker.toPublishable(fits);
    expect(again.jpeg.equals((await inline.toPublishable(fits)).jpeg)).toBe(true);
    expect(workers.lastThreadId).not.toBe(first);
  });

  it('refuses tasks after shutdown (the worker is terminated)', async () => {
    const own = new PixelWorkers();
    const converter = new ImageConverter(options, own);
    await converter.toPublishable(encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535) }));
    await own.onApplicationShutdown();
    await expect(converter.toPublishable(encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 65535) }))).rejects.toThrow(/shut down/);
  });
});
