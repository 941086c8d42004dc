import type { Sharp } from 'sharp';
import type { StretchMode } from '../../config/image-server-options.js';
import {
  applyStretch,
  autoStretchParameters,
  channelStatistics,
  IDENTITY_STRETCH,
  shouldStretch,
  transfer,
  type StretchParameters,
  type ValueRange,
} from './auto-stretch.js';
import { displayRange, FitsError, fitsMetrics, locateFitsImage, type FitsImageLayout, type FitsMetrics, type FitsReadOptions } from './fits-reader.js';
import { ImageRejectedError } from './image-rejected.error.js';

/** 8-bit interleaved pixels with the options sharp needs to take them: `sharp(data, { raw })`. */
export interface RawPixels {
  data: Buffer;
  raw: { width: number; height: number; channels: 1 | 3 };
}

/** A FITS image ready for sharp, with what its header says about the stack. */
export interface FitsIntake extends RawPixels {
  /** Stack size and total exposure from the header (empty when it has neither). */
  metrics: FitsMetrics;
  /** True when the auto-stretch was applied; otherwise the values are scaled linearly. */
  stretched: boolean;
}

/** Pixels per channel the statistics (and the value range) are taken from. */
const STATISTICS_SAMPLES = 250_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reads a FITS buffer and returns 8-bit pixels for sharp: auto-stretched when `mode` says
 * so (`auto`: when the statistics look linear), else scaled linearly over the type's range.
 * Statistics come from an even subsample; 8- and 16-bit data then go through a lookup table
 * per stored value, other types through one pass of the transfer function.
 * Throws `ImageRejectedError` (`unsupported-type` or `corrupt`) for what cannot be shown.
 */
export function fitsToSharpInput(buffer: Buffer, mode: StretchMode, options?: FitsReadOptions): FitsIntake {
  let layout: FitsImageLayout;
  try {
    layout = locateFitsImage(buffer, options);
  } catch (err) {
    if (err instanceof FitsError) {
      throw new ImageRejectedError(err.kind === 'unsupported' ? 'unsupported-type' : 'corrupt', err.message);
    }
    throw err;
  }
  const { width, height, channels, bitpix } = layout;
  const samples = bitpix === 8 || bitpix === 16 ? undefined : nativeSamples(layout);
  const { sample, min, max } = subsample(layout, samples);
  const range = displayRange(bitpix, layout.bzero, layout.bscale, min, max);
  const stats = channelStatistics(sample, channels, range, Infinity);
  const stretched = shouldStretch(mode, stats, Math.abs(bitpix));
  const params = stretched ? autoStretchParameters(stats) : stats.map(() => IDENTITY_STRETCH);
  const out = Buffer.allocUnsafe(width * height * channels);
  if (samples === undefined) {
    mapThroughTable(layout, range, params, out);
  } else {
    mapSamples(layout, samples, range, params, out);
  }
  return { data: out, raw: { width, height, channels }, metrics: fitsMetrics(layout.header), stretched };
}

/** The stored value of sample `i` of 8- or 16-bit data, as the unsigned bit pattern (the table index). */
function codeAt(bytes: Uint8Array, bitpix: 8 | 16, i: number): number {
  return bitpix === 8 ? bytes[i] : (bytes[2 * i] << 8) | bytes[2 * i + 1];
}

/** Physical value of a table index: BZERO + BSCALE × the stored (signed for 16-bit) value. */
function physical(code: number, bitpix: 8 | 16, bzero: number, bscale: number): number {
  return bzero + bscale * (bitpix === 16 && code >= 0x8000 ? code - 0x10000 : code);
}

/**
 * Physical values of an even subsample of pixels (interleaved, NaN for blanks) and their
 * finite extent, from which the value range is chosen: a rare outlier the subsample
 * misses is clipped rather than darkening the whole image.
 */
function subsample(layout: FitsImageLayout, samples: ArrayLike<number> | undefined): { sample: Float32Array; min: number; max: number } {
  const { width, height, channels, bitpix, bzero, bscale, blank, pixels: bytes } = layout;
  const pixels = width * height;
  const step = Math.max(1, Math.floor(pixels / STATISTICS_SAMPLES));
  const count = Math.ceil(pixels / step);
  const sample = new Float32Array(count * channels);
  const blankRaw = blank ?? NaN;
  let min = Infinity;
  let max = -Infinity;
  for (let c = 0; c < channels; c++) {
    for (let n = 0, p = 0; n < count; n++, p += step) {
      const i = c * pixels + p;
      let raw: number;
      if (samples === undefined) {
        const code = codeAt(bytes, bitpix as 8 | 16, i);
        raw = bitpix === 16 && code >= 0x8000 ? code - 0x10000 : code;
      } else {
        raw = samples[i];
      }
      if (raw !== raw || raw === blankRaw) {
        sample[n * channels + c] = NaN;
        continue;
      }
      const v = bzero + bscale * raw;
      sample[n * channels + c] = v;
      if (v < min) {
        min = v;
      }
      if (v > max) {
        max = v;
      }
    }
  }
  return min > max ? { sample, min: 0, max: 0 } : { sample, min, max };
}

/** 8- and 16-bit data: one 8-bit result per possible stored value, then a table lookup per sample. */
function mapThroughTable(layout: FitsImageLayout, range: ValueRange, params: readonly StretchParameters[], out: Buffer): void {
  const { width, height, channels, bzero, bscale, blank, topDown, pixels: bytes } = layout;
  const bitpix = layout.bitpix as 8 | 16;
  const size = bitpix === 8 ? 256 : 65536;
  const pixels = width * height;
  for (let c = 0; c < channels; c++) {
    const curve = transfer(range, params[c], 255);
    const table = new Uint8Array(size);
    for (let code = 0; code < size; code++) {
      table[code] = curve.at(physical(code, bitpix, bzero, bscale));
    }
    if (blank !== undefined && Number.isInteger(blank)) {
      table[blank & (size - 1)] = 0;
    }
    for (let row = 0; row < height; row++) {
      // FITS stores the bottom row first unless ROWORDER says otherwise.
      const outRow = topDown ? row : height - 1 - row;
      let dst = outRow * width * channels + c;
      const first = c * pixels + row * width;
      if (bitpix === 8) {
        for (let src = first, end = first + width; src < end; src++, dst += channels) {
          out[dst] = table[bytes[src]];
        }
      } else {
        for (let src = 2 * first, end = 2 * (first + width); src < end; src += 2, dst += channels) {
          out[dst] = table[(bytes[src] << 8) | bytes[src + 1]];
        }
      }
    }
  }
}

/** 32-bit integer and float data in native byte order: a copy, swapped by Node in one call. */
function nativeSamples({ bitpix, pixels: bytes }: FitsImageLayout): Int32Array | Float32Array | Float64Array {
  // Its own ArrayBuffer, so the typed views below start aligned.
  const copy = new Uint8Array(bytes);
  if (LITTLE_ENDIAN) {
    const swapped = Buffer.from(copy.buffer, 0, copy.length);
    if (bitpix === -64) {
      swapped.swap64();
    } else {
      swapped.swap32();
    }
  }
  const { buffer, length } = copy;
  return bitpix === 32 ? new Int32Array(buffer, 0, length / 4) : bitpix === -32 ? new Float32Array(buffer, 0, length / 4) : new Float64Array(buffer, 0, length / 8);
}

/** 32-bit integer and float data: BZERO / BSCALE folded into the transfer's a·x + b, one pass. */
function mapSamples(layout: FitsImageLayout, samples: Int32Array | Float32Array | Float64Array, range: ValueRange, params: readonly StretchParameters[], out: Buffer): void {
  const { width, height, channels, bzero, bscale, blank, topDown } = layout;
  const pixels = width * height;
  const blankRaw = blank ?? NaN;
  for (let c = 0; c < channels; c++) {
    const { a: a0, b: b0, m } = transfer(range, params[c], 255);
    const a = a0 * bscale;
    const b = a0 * bzero + b0;
    const k1 = (m - 1) * 255;
    const k2 = 2 * m - 1;
    for (let row = 0; row < height; row++) {
      const outRow = topDown ? row : height - 1 - row;
      let dst = outRow * width * channels + c;
      for (let src = c * pixels + row * width, end = src + width; src < end; src++, dst += channels) {
        const raw = samples[src];
        const t = a * raw + b;
        // `!(t > 0)` also catches NaN.
        out[dst] = raw === blankRaw || !(t > 0) ? 0 : t >= 1 ? 255 : (k1 * t) / (k2 * t - m) + 0.5;
      }
    }
  }
}

/**
 * For a PNG or TIFF already opened with sharp (orientation applied, alpha flattened or
 * not): when `mode` says so for its statistics, decodes it and returns auto-stretched 8-bit
 * pixels; otherwise undefined, and the caller converts `image` as before. Never for JPEG.
 */
export async function stretchIfLinear(image: Sharp, mode: StretchMode): Promise<RawPixels | undefined> {
  if (mode === 'never') {
    return undefined;
  }
  const { depth, channels = 3 } = await image.metadata();
  const bits = depth === 'uchar' || depth === 'char' ? 8 : depth === 'ushort' || depth === 'short' ? 16 : 32;
  if (bits === 8 && mode === 'auto') {
    return undefined;
  }
  // The colourspace keeps the samples as stored: without it libvips hands out 8-bit sRGB.
  const grey = channels <= 2;
  const space = bits === 8 ? (grey ? 'b-w' : 'srgb') : bits === 16 ? (grey ? 'grey16' : 'rgb16') : grey ? 'b-w' : 'scrgb';
  const decoded = await image
    .clone()
    .removeAlpha()
    .toColourspace(space)
    .raw({ depth: bits === 8 ? 'uchar' : bits === 16 ? 'ushort' : 'float' })
    .toBuffer({ resolveWithObject: true });
  const { info } = decoded;
  if (info.channels !== 1 && info.channels !== 3) {
    return undefined;
  }
  const bytes = decoded.data;
  const data =
    bits === 8
      ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
      : bits === 16
        ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2)
        : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const range = bits === 8 ? { low: 0, high: 255 } : bits === 16 ? { low: 0, high: 65535 } : floatRange(data);
  const stats = channelStatistics(data, info.channels, range);
  if (!shouldStretch(mode, stats, bits)) {
    return undefined;
  }
  const pixels = applyStretch(data, info.channels, range, autoStretchParameters(stats), 8);
  return {
    data: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    raw: { width: info.width, height: info.height, channels: info.channels },
  };
}

/** Float data in 0..1 as it is; 0..65535 (ADU kept as floats) over that; else its own extent. */
function floatRange(data: ArrayLike<number>): ValueRange {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < min) {
      min = v;
    }
    if (v > max) {
      max = v;
    }
  }
  if (min >= 0 && max <= 1) {
    return { low: 0, high: 1 };
  }
  if (min >= 0 && max <= 65535) {
    return { low: 0, high: 65535 };
  }
  return max > min ? { low: min, high: max } : { low: 0, high: 1 };
}
