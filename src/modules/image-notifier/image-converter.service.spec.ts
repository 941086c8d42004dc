import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { resolveImageServerOptions, type ImageServerOptions } from '../../config/image-server-options.js';
import { closeTo, decodeStrictly, makeTexturedJpeg, makeTexturedPng, makeTexturedTiff } from '../../../test/fixtures/sample-images.js';
import { encodeTiff } from '../../../test/fixtures/tiff-writer.mjs';
import { encodeFits } from '../../../test/fixtures/fits-writer.mjs';
import { floatTiffBomb } from '../../../test/fixtures/bombs.mjs';
import { ImageConverter } from './image-converter.service.js';
import { ImageRejectedError } from './image-rejected.error.js';

const converter = (options: Partial<ImageServerOptions> = {}): ImageConverter => new ImageConverter(resolveImageServerOptions(options));
const ORANGE = { r: 200, g: 120, b: 40 };

async function rejection(promise: Promise<unknown>): Promise<ImageRejectedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageRejectedError);
  return err as ImageRejectedError;
}

describe('ImageConverter', () => {
  it('passes a JPEG within the size limit through byte for byte', async () => {
    const jpeg = await makeTexturedJpeg({ colour: ORANGE });
    const out = await converter().toPublishable(jpeg);
    expect(out.passedThrough).toBe(true);
    expect(out.jpeg.equals(jpeg)).toBe(true);
    expect([out.width, out.height]).toEqual([256, 192]);
  });

  it.each([
    ['8-bit RGB PNG', () => makeTexturedPng({ colour: ORANGE }), 3],
    ['16-bit RGB PNG', () => makeTexturedPng({ colour: ORANGE, bits: 16 }), 3],
    ['16-bit grey PNG', () => makeTexturedPng({ colour: ORANGE, bits: 16, grey: true }), 1],
    ['16-bit RGB TIFF', () => Promise.resolve(makeTexturedTiff({ colour: ORANGE })), 3],
    ['16-bit RGB big-endian TIFF, directory first', () => Promise.resolve(makeTexturedTiff({ colour: ORANGE, littleEndian: false, ifdFirst: true })), 3],
    ['16-bit grey TIFF', () => Promise.resolve(makeTexturedTiff({ colour: ORANGE, grey: true })), 1],
    ['8-bit RGB TIFF', () => Promise.resolve(makeTexturedTiff({ colour: ORANGE, bits: 8 })), 3],
  ])('converts a %s to an 8-bit JPEG of the same look', async (_what, make, channels) => {
    const out = await converter().toPublishable(await make());
    expect(out.passedThrough).toBe(false);
    const decoded = await decodeStrictly(out.jpeg);
    expect(decoded.format).toBe('jpeg');
    expect([decoded.width, decoded.height]).toEqual([256, 192]);
    expect(decoded.channels).toBe(channels);
    // 16 bits scaled down, not clipped to white: the mean colour survives.
    const grey = Math.round((ORANGE.r + ORANGE.g + ORANGE.b) / 3);
    expect(closeTo(decoded.mean, channels === 1 ? { r: grey, g: grey, b: grey } : ORANGE, 4), JSON.stringify(decoded.mean)).toBe(true);
  });

  it('scales 32-bit float TIFF values from 0..1 to 8 bits, without a gamma curve', async () => {
    const width = 64;
    const height = 48;
    const rgb = new Float32Array(width * height * 3).map((_, i) => [0.8, 0.4, 0.2][i % 3]);
    const out = await converter().toPublishable(encodeTiff({ width, height, channels: 3, bits: 32, float: true, data: rgb }));
    const { mean } = await decodeStrictly(out.jpeg);
    expect(closeTo(mean, { r: 204, g: 102, b: 51 }, 3), JSON.stringify(mean)).toBe(true);
    const grey = new Float32Array(width * height).fill(0.5);
    const greyOut = await decodeStrictly((await converter().toPublishable(encodeTiff({ width, height, channels: 1, bits: 32, float: true, data: grey }))).jpeg);
    expect(greyOut.mean.r).toBeGreaterThanOrEqual(125);
    expect(greyOut.mean.r).toBeLessThanOrEqual(130);
  });

  it('downsizes an image larger than maxImageSize on its long side, keeping the aspect ratio', async () => {
    const png = await makeTexturedPng({ colour: ORANGE, width: 900, height: 300 });
    const out = await converter({ maxImageSize: 600 }).toPublishable(png);
    expect([out.width, out.height]).toEqual([600, 200]);
    const decoded = await decodeStrictly(out.jpeg);
    expect([decoded.width, decoded.height]).toEqual([600, 200]);
  });

  it('re-encodes an oversized JPEG instead of passing it through', async () => {
    const jpeg = await makeTexturedJpeg({ colour: ORANGE, width: 800, height: 600 });
    const out = await converter({ maxImageSize: 400 }).toPublishable(jpeg);
    expect(out.passedThrough).toBe(false);
    expect([out.width, out.height]).toEqual([400, 300]);
    expect(closeTo((await decodeStrictly(out.jpeg)).mean, ORANGE, 4)).toBe(true);
  });

  it('applies the EXIF orientation, so the published image is upright without it', async () => {
    // 60x40 stored, orientation 6 (rotate 90° clockwise to view): shown 40x60.
    const sideways = await sharp({ create: { width: 60, height: 40, channels: 3, background: ORANGE } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const out = await converter().toPublishable(sideways);
    expect(out.passedThrough).toBe(false);
    const meta = await sharp(out.jpeg).metadata();
    expect([meta.width, meta.height]).toEqual([40, 60]);
    expect(meta.orientation ?? 1).toBe(1);
  });

  it('applies a TIFF orientation tag too', async () => {
    const tiff = makeTexturedTiff({ colour: ORANGE, width: 60, height: 40, orientation: 8 });
    const out = await converter().toPublishable(tiff);
    expect([out.width, out.height]).toEqual([40, 60]);
  });

  it('uses jpegQuality for converted images', async () => {
    const png = await makeTexturedPng({ colour: ORANGE, width: 512, height: 384 });
    const low = await converter({ jpegQuality: 20 }).toPublishable(png);
    const high = await converter({ jpegQuality: 98 }).toPublishable(png);
    expect(high.jpeg.length).toBeGreaterThan(low.jpeg.length * 1.5);
  });

  it('flattens transparency onto black', async () => {
    const png = await sharp({ create: { width: 32, height: 32, channels: 4, background: { r: 255, g: 255, b: 255, alpha: 0 } } }).png().toBuffer();
    const { mean } = await decodeStrictly((await converter().toPublishable(png)).jpeg);
    expect(mean.r).toBeLessThan(5);
  });

  it('refuses what is not a JPEG, PNG or TIFF as an unsupported type', async () => {
    const gif = await sharp({ create: { width: 8, height: 8, channels: 3, background: ORANGE } }).gif().toBuffer();
    for (const bytes of [Buffer.from('plain text, not an image'), Buffer.alloc(0), gif]) {
      expect((await rejection(converter().toPublishable(bytes))).reason).toBe('unsupported-type');
    }
  });

  it('refuses truncated files of every format as corrupt, wherever they are cut', async () => {
    const files: [string, Buffer][] = [
      ['jpeg', await makeTexturedJpeg({ colour: ORANGE })],
      ['png', await makeTexturedPng({ colour: ORANGE, bits: 16 })],
      ['tiff (directory last)', makeTexturedTiff({ colour: ORANGE })],
      ['tiff (directory first)', makeTexturedTiff({ colour: ORANGE, ifdFirst: true })],
    ];
    for (const [what, whole] of files) {
      for (const fraction of [0.2, 0.5, 0.9, 0.999]) {
        const cut = whole.subarray(0, Math.floor(whole.length * fraction));
        const err = await rejection(converter().toPublishable(cut));
        expect(err.reason, `${what} cut at ${fraction}`).toBe('corrupt');
        expect(err.message, what).toMatch(/truncated|damaged/);
      }
    }
  });

  it('refuses a PNG cut just before its IEND chunk, which libpng alone would accept', async () => {
    const png = await makeTexturedPng({ colour: ORANGE });
    const err = await rejection(converter().toPublishable(png.subarray(0, png.length - 12)));
    expect(err.message).toMatch(/truncated PNG/);
  });

  it('refuses a JPEG cut in the middle even when it still ends with an end-of-image marker', async () => {
    const jpeg = await makeTexturedJpeg({ colour: ORANGE, width: 512, height: 384 });
    const spliced = Buffer.concat([jpeg.subarray(0, Math.floor(jpeg.length / 2)), Buffer.from([0xff, 0xd9])]);
    const err = await rejection(converter().toPublishable(spliced));
    expect(err.reason).toBe('corrupt');
    expect(err.message).toMatch(/damaged JPEG/);
  });

  it('refuses a PNG with a damaged chunk', async () => {
    const png = Buffer.from(await makeTexturedPng({ colour: ORANGE }));
    png[png.length >> 1] ^= 0xff;
    const err = await rejection(converter().toPublishable(png));
    expect(err.message).toMatch(/damaged PNG/);
  });

  it.each([
    ['JPEG', () => makeTexturedJpeg({ colour: ORANGE, width: 512, height: 384 })],
    ['16-bit PNG', () => makeTexturedPng({ colour: ORANGE, bits: 16, width: 512, height: 384 })],
    ['16-bit TIFF', () => Promise.resolve(makeTexturedTiff({ colour: ORANGE, width: 512, height: 384 }))],
    ['FITS', () => Promise.resolve(encodeFits({ width: 512, height: 384, channels: 1, bitpix: 16, data: new Uint16Array(512 * 384).fill(900) }))],
  ])('refuses a %s with more pixels than maxInputPixels as too-large, naming its size and MAX_INPUT_PIXELS', async (_what, make) => {
    const err = await rejection(converter({ maxInputPixels: 100_000 }).toPublishable(await make()));
    expect(err.reason).toBe('too-large');
    expect(err.message).toMatch(/512×384/);
    expect(err.message).toMatch(/100000.*MAX_INPUT_PIXELS/);
  });

  it.each([
    ['a FITS', () => encodeFits({ width: 640, height: 480, channels: 1, bitpix: 16, data: new Uint16Array(640 * 480).map((_, i) => 800 + (i % 640)) })],
    ['a linear 16-bit RGB TIFF', () => encodeTiff({ width: 640, height: 480, channels: 3, bits: 16, data: new Uint16Array(640 * 480 * 3).map((_, i) => 1900 + (Math.floor(i / 3) % 640) / 4) })],
  ])('start() hands %s over with its pixels as soon as they are known, its JPEG still encoding from them', async (_what, make) => {
    const started = await converter().start(make());
    expect(started.jpeg).toBeInstanceOf(Promise);
    expect(started.pixels?.raw).toMatchObject({ width: 640, height: 480 });
    expect([started.width, started.height]).toEqual([640, 480]);
    const decoded = await decodeStrictly(await started.jpeg);
    expect([decoded.width, decoded.height]).toEqual([640, 480]);
    expect(started.stretched).toBe(true);
    // The JPEG is those pixels, encoded.
    const fromPixels = started.pixels!.data;
    const back = await sharp(await started.jpeg)
      .toColourspace(started.pixels!.raw.channels === 1 ? 'b-w' : 'srgb')
      .raw()
      .toBuffer();
    expect(back.length).toBe(fromPixels.length);
    let total = 0;
    for (let i = 0; i < back.length; i++) {
      total += Math.abs(back[i] - fromPixels[i]);
    }
    expect(total / back.length).toBeLessThan(4);
  });

  it('start() of an image downsized to maxImageSize waits for its JPEG: its pixels are not the JPEG\'s', async () => {
    const fits = encodeFits({ width: 640, height: 480, channels: 1, bitpix: 16, data: new Uint16Array(640 * 480).map((_, i) => 800 + (i % 640)) });
    const started = await converter({ maxImageSize: 320 }).start(fits);
    expect(Buffer.isBuffer(started.jpeg)).toBe(true);
    expect(started.pixels).toBeUndefined();
    expect([started.width, started.height]).toEqual([320, 240]);
  });

  it('reduces a high-depth image in libvips before the stretch: a 4000² float TIFF is stretched at maxImageSize', async () => {
    const out = await converter({ maxImageSize: 512, maxInputPixels: 20_000_000 }).toPublishable(floatTiffBomb({ side: 4000, value: 0.02 }));
    expect(out.stretched).toBe(true);
    expect([out.width, out.height]).toEqual([512, 512]);
    const decoded = await decodeStrictly(out.jpeg);
    expect([decoded.width, decoded.height, decoded.channels]).toEqual([512, 512, 1]);
  });
});

describe('ImageConverter and sharpConcurrency (issue 23)', () => {
  it('sets libvips threads per image when given (SHARP_CONCURRENCY), leaves them otherwise', () => {
    const before = sharp.concurrency();
    try {
      converter();
      expect(sharp.concurrency()).toBe(before);
      converter({ sharpConcurrency: 1 });
      expect(sharp.concurrency()).toBe(1);
    } finally {
      sharp.concurrency(before);
    }
  });
});
