import { describe, expect, it } from 'vitest';
import { makeTexturedJpeg, makeTexturedPng, makeTexturedTiff } from '../../../test/fixtures/sample-images.js';
import { formatOfMediaType, sniffImageFormat } from './image-format.js';
import { ImageRejectedError } from './image-rejected.error.js';
import { assertCompletePng } from './png-check.js';
import { assertCompleteTiff } from './tiff-check.js';

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

describe('assertCompleteTiff', () => {
  it.each([
    ['little-endian, directory last', { littleEndian: true, ifdFirst: false }],
    ['big-endian, directory first', { littleEndian: false, ifdFirst: true }],
  ])('accepts a whole %s TIFF and refuses every proper prefix of it', (_what, layout) => {
    const tiff = makeTexturedTiff({ colour: GREEN, width: 40, height: 30, ...layout });
    expect(() => assertCompleteTiff(tiff)).not.toThrow();
    for (let length = 0; length < tiff.length; length += Math.max(1, Math.floor(tiff.length / 97))) {
      expect(() => assertCompleteTiff(tiff.subarray(0, length)), `cut at ${length}`).toThrow(/truncated TIFF/);
    }
    expect(() => assertCompleteTiff(tiff.subarray(0, tiff.length - 1))).toThrow(/truncated TIFF/);
  });

  it('reads BigTIFF directories', () => {
    const whole = bigTiff(64);
    expect(() => assertCompleteTiff(whole)).not.toThrow();
    expect(() => assertCompleteTiff(whole.subarray(0, whole.length - 10))).toThrow(/pixel block 1 of 1/);
  });

  it('refuses a TIFF whose directory has no strip or tile table', () => {
    const tiff = Buffer.alloc(8 + 2 + 12 + 4);
    tiff.write('II', 0, 'latin1');
    tiff.writeUInt16LE(42, 2);
    tiff.writeUInt32LE(8, 4);
    tiff.writeUInt16LE(1, 8);
    tiff.writeUInt16LE(256, 10); // ImageWidth only
    expect(() => assertCompleteTiff(tiff)).toThrow(/no strip or tile table/);
  });
});
