import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { makeTexturedJpeg, makeTexturedPng, makeTexturedTiff } from '../../../test/fixtures/sample-images.js';
import { formatOfMediaType, sniffImageFormat } from '../../common/image-format.js';
import { ImageRejectedError } from './image-rejected.error.js';
import { assertCompletePng } from './png-check.js';
import { assertJpegEnds } from './jpeg-check.js';

const GREEN = { r: 20, g: 180, b: 60 };

/** A BigTIFF (version 43) with one 64-byte strip, its tables in LONG8 as BigTIFF writers do. */
function bigTiff(stripBytes: number): Buffer {
  const buf = Buffer.alloc(16 + 8 + 2 * 20 + 8 + stripBytes);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(43, 2);
  buf.writeUInt16LE(8, 4);
  buf.writeBigUInt64LE(16n, 8);
  buf.writeBigUInt64LE(2n, 16);
  const pixels = 16 + 8 + 2 * 20 + 8;
  const entries: [number, bigint][] = [
    [273, BigInt(pixels)],
    [279, BigInt(stripBytes)],
  ];
  entries.forEach(([tag, value], i) => {
    const at = 24 + i * 20;
    buf.writeUInt16LE(tag, at);
    buf.writeUInt16LE(16, at + 2);
    buf.writeBigUInt64LE(1n, at + 4);
    buf.writeBigUInt64LE(value, at + 12);
  });
  return buf;
}

describe('sniffImageFormat', () => {
  it('knows JPEG, PNG and both TIFF byte orders by their signatures, not by anything else', async () => {
    expect(sniffImageFormat(await makeTexturedJpeg({ colour: GREEN }))).toBe('jpeg');
    expect(sniffImageFormat(await makeTexturedPng({ colour: GREEN }))).toBe('png');
    expect(sniffImageFormat(makeTexturedTiff({ colour: GREEN }))).toBe('tiff');
    expect(sniffImageFormat(makeTexturedTiff({ colour: GREEN, littleEndian: false }))).toBe('tiff');
    expect(sniffImageFormat(bigTiff(64))).toBe('tiff');
    expect(sniffImageFormat(Buffer.from('GIF89a....'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from([0xff, 0xd8]))).toBeUndefined();
    expect(sniffImageFormat(Buffer.alloc(0))).toBeUndefined();
  });

  it('maps the accepted media types to formats', () => {
    expect(formatOfMediaType('image/jpeg')).toBe('jpeg');
    expect(formatOfMediaType('image/png')).toBe('png');
    expect(formatOfMediaType('image/tiff')).toBe('tiff');
    expect(formatOfMediaType('image/gif')).toBeUndefined();
  });
});

describe('assertCompletePng', () => {
  it('accepts a whole PNG and refuses every proper prefix of it', async () => {
    const png = await makeTexturedPng({ colour: GREEN, width: 32, height: 16 });
    expect(() => assertCompletePng(png)).not.toThrow();
    for (let length = 8; length < png.length; length += Math.max(1, Math.floor(png.length / 97))) {
      expect(() => assertCompletePng(png.subarray(0, length)), `cut at ${length}`).toThrow(ImageRejectedError);
    }
    expect(() => assertCompletePng(png.subarray(0, png.length - 1))).toThrow(/truncated PNG/);
  });
});

describe('what sharp misses (why png-check and jpeg-check stay)', () => {
  it('libvips decodes a PNG cut just before IEND without an error, even with failOn "warning"', async () => {
    const png = await makeTexturedPng({ colour: GREEN, width: 32, height: 16 });
    const cut = png.subarray(0, png.length - 12);
    await expect(sharp(cut, { failOn: 'warning' }).raw().toBuffer()).resolves.toBeInstanceOf(Buffer);
    expect(() => assertCompletePng(cut)).toThrow(/truncated PNG/);
  });

  it('the metadata of a JPEG cut in half reads fine (the header is whole), so `verify: header` needs the end check', async () => {
    const jpeg = await makeTexturedJpeg({ colour: GREEN });
    const cut = jpeg.subarray(0, jpeg.length >> 1);
    await expect(sharp(cut, { failOn: 'warning' }).metadata()).resolves.toMatchObject({ format: 'jpeg' });
    expect(() => assertJpegEnds(cut)).toThrow(/truncated JPEG/);
  });

  it('libvips refuses a cut TIFF by itself in both layouts, so there is no TIFF check of our own', async () => {
    for (const ifdFirst of [false, true]) {
      const tiff = makeTexturedTiff({ colour: GREEN, ifdFirst });
      for (const fraction of [0.2, 0.5, 0.99]) {
        const cut = tiff.subarray(0, Math.floor(tiff.length * fraction));
        await expect(sharp(cut, { failOn: 'error' }).raw().toBuffer(), `${String(ifdFirst)} ${fraction}`).rejects.toThrow();
      }
    }
  });
});
