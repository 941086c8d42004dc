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
import type { SessionMetrics } from '../web-assets/web-assets.service.js';
import { displayRange, FitsError, fitsMetrics, locateFitsImage, type FitsImageLayout, type FitsReadOptions, type FitsValue } from './fits-reader.js';
import { fitsIdentity, type FitsIdentity } from './fits-identity.js';
import { ImageRejectedError } from './image-rejected.error.js';

/** 8-bit interleaved pixels with the options sharp needs to take them: `sharp(data, { raw })`. */
export interface RawPixels {
  data: Buffer;
  raw: { width: number; height: number; channels: 1 | 3 };
}

/** A FITS image ready for sharp, with what its header says about the stack. */
export interface FitsIntake extends RawPixels {
  /** Stack size, exposure, object and kit from the header (empty when it has none). */
  metrics: HeaderMetrics & FitsIdentity;
  /** True when the auto-stretch was applied; otherwise the values are scaled linearly. */
  stretched: boolean;
}

/** Pixels per channel the statistics (and the value range) are taken from: a median stable to well under 1 % of the noise. */
const STATISTICS_SAMPLES = 100_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Steps of the table that 32-bit and float data are quantised into: under one 8-bit level of error. */
const FLOAT_TABLE_SIZE = 65536;

/**
 * Reads a FITS buffer and returns 8-bit pixels for sharp: auto-stretched when `mode` says
 * so (`auto`: when the statistics look linear), else scaled linearly over the type's range.
 * Statistics come from an even subsample; then one pass maps each stored value through a
 * lookup table (per stored value for 8 and 16 bits, quantised for 32-bit and float data).
 * Throws `ImageRejectedError` (`unsupported-type` or `corrupt`) for what cannot be shown.
 */
export function fitsToSharpInput(buffer: Buffer, mode: StretchMode, options?: FitsReadOptions): FitsIntake {
  let layout: FitsImageLayout;
  try {
    layout = locateFitsImage(buffer, options);
  } catch (err) {
    if (err instanceof FitsError) {
      if (err.kind === 'too-large') {
        throw new ImageRejectedError('too-large', `${err.message} (MAX_INPUT_PIXELS); nothing was decoded`);
      }
      throw new ImageRejectedError(err.kind === 'unsupported' ? 'unsupported-type' : 'corrupt', err.message);
    }
    throw err;
  }
  const { width, height, channels, bitpix } = layout;
  const { sample, min, max } = subsample(layout);
  const range = displayRange(bitpix, layout.bzero, layout.bscale, min, max);
  const stats = channelStatistics(sample, channels, range, Infinity);
  const stretched = shouldStretch(mode, stats, Math.abs(bitpix));
  const params = stretched ? autoStretchParameters(stats) : stats.map(() => IDENTITY_STRETCH);
  const out = Buffer.allocUnsafe(width * height * channels);
  if (bitpix === 8 || bitpix === 16) {
    mapThroughTable(layout, range, params, out);
  } else {
    mapQuantised(layout, range, params, out);
  }
  return { data: out, raw: { width, height, channels }, metrics: { ...headerMetrics(layout.header), ...fitsIdentity(layout.header) }, stretched };
}

/** What a FITS header says about the stack. */
export interface HeaderMetrics {
  /** STACKCNT, NCOMBINE or IMGCOUNT. */
  stackSize?: number;
  /** LIVETIME, or EXPTIME (EXPOSURE) times the header's own stack size. */
  exposureSeconds?: number;
  /** EXPTIME or EXPOSURE of a header with no stack size: multiplied by the stack size the publish uses. */
  frameExposureSeconds?: number;
}

/** {@link fitsMetrics}, except that one frame's exposure without a count stays one frame's. */
export function headerMetrics(header: ReadonlyMap<string, FitsValue>): HeaderMetrics {
  const metrics = fitsMetrics(header);
  const live = header.get('LIVETIME');
  const hasLiveTime = typeof live === 'number' && Number.isFinite(live) && live >= 0;
  if (metrics.stackSize === undefined && metrics.exposureSeconds !== undefined && !hasLiveTime) {
    return { frameExposureSeconds: metrics.exposureSeconds };
  }
  return metrics;
}

/**
 * The metrics of a publish: the caller's, then the header's, then the fallbacks (the
 * watch's count). One frame's EXPTIME is multiplied by the stack size chosen so, never
 * mixed with another source's count (a stack of 14 with one frame's 50 s).
 */
export function combineMetrics(given: SessionMetrics, header: HeaderMetrics & FitsIdentity, fallback: SessionMetrics): SessionMetrics {
  const stackSize = given.stackSize ?? header.stackSize ?? fallback.stackSize;
  const object = given.object ?? header.object ?? fallback.object;
  const details = given.details ?? header.details ?? fallback.details;
  const fromFrames = header.frameExposureSeconds === undefined ? undefined : header.frameExposureSeconds * (stackSize ?? 1);
  const exposureSeconds = given.exposureSeconds ?? header.exposureSeconds ?? fromFrames ?? fallback.exposureSeconds;
  return {
    ...(stackSize === undefined ? {} : { stackSize }),
    ...(exposureSeconds === undefined ? {} : { exposureSeconds }),
    ...(object === undefined ? {} : { object }),
    ...(details === undefined ? {} : { details }),
  };
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Stored sample `i` (over all planes) of any BITPIX, before BZERO / BSCALE. */
function storedAt(view: DataView, bitpix: FitsImageLayout['bitpix'], i: number): number {
  switch (bitpix) {
    case 8:
      return view.getUint8(i);
    case 16:
      return view.getInt16(2 * i);
    case 32:
      return view.getInt32(4 * i);
    case -32:
      return view.getFloat32(4 * i);
    case -64:
      return view.getFloat64(8 * i);
    default: {
      const unreachable: never = bitpix;
      throw new Error(`unknown BITPIX ${String(unreachable)}`);
    }
  }
}

/**
 * Physical values of an even subsample of pixels (interleaved, NaN for blanks) and their
 * finite extent, from which the value range is chosen: a rare outlier the subsample
 * misses is clipped rather than darkening the whole image.
 */
function subsample(layout: FitsImageLayout): { sample: Float32Array; min: number; max: number } {
  const { width, height, channels, bitpix, bzero, bscale, blank, pixels: bytes } = layout;
  const view = dataView(bytes);
  const pixels = width * height;
  const step = Math.max(1, Math.floor(pixels / STATISTICS_SAMPLES));
  const count = Math.ceil(pixels / step);
  const sample = new Float32Array(count * channels);
  const blankRaw = blank ?? NaN;
  let min = Infinity;
  let max = -Infinity;
  for (let c = 0; c < channels; c++) {
    for (let n = 0, p = 0; n < count; n++, p += step) {
      const raw = storedAt(view, bitpix, c * pixels + p);
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

/** Physical value of a table index: BZERO + BSCALE × the stored (signed for 16-bit) value. */
function physical(code: number, bitpix: 8 | 16, bzero: number, bscale: number): number {
  return bzero + bscale * (bitpix === 16 && code >= 0x8000 ? code - 0x10000 : code);
}

/** 8- and 16-bit data: one 8-bit result per possible stored value, then a table lookup per sample. */
function mapThroughTable(layout: FitsImageLayout, range: ValueRange, params: readonly StretchParameters[], out: Buffer): void {
  const { width, height, channels, bzero, bscale, blank, topDown, pixels: bytes } = layout;
  const bitpix = layout.bitpix as 8 | 16;
  const size = bitpix === 8 ? 256 : 65536;
  const pixels = width * height;
  // One read per sample where the data are 2-byte aligned (always, unless the caller sliced the buffer oddly).
  const aligned = bitpix === 16 && LITTLE_ENDIAN && bytes.byteOffset % 2 === 0;
  const words = aligned ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2) : undefined;
  const tables: Uint8Array[] = [];
  for (let c = 0; c < channels; c++) {
    const curve = transfer(range, params[c], 255);
    let table = new Uint8Array(size);
    for (let code = 0; code < size; code++) {
      table[code] = curve.at(physical(code, bitpix, bzero, bscale));
    }
    if (blank !== undefined && Number.isInteger(blank)) {
      table[blank & (size - 1)] = 0;
    }
    if (bitpix === 16 && words !== undefined) {
      // Native 16-bit reads of big-endian data give byte-swapped codes: swap the table instead.
      const swapped = new Uint8Array(size);
      for (let code = 0; code < size; code++) {
        swapped[((code & 0xff) << 8) | (code >> 8)] = table[code];
      }
      table = swapped;
    }
    tables.push(table);
  }
  if (words !== undefined && channels === 3) {
    // Colour: the three planes read side by side, so the output is written in order.
    const [t0, t1, t2] = tables;
    for (let row = 0; row < height; row++) {
      let dst = (topDown ? row : height - 1 - row) * width * 3;
      for (let r = row * width, g = r + pixels, b = g + pixels, end = r + width; r < end; r++, g++, b++) {
        out[dst++] = t0[words[r]];
        out[dst++] = t1[words[g]];
        out[dst++] = t2[words[b]];
      }
    }
    return;
  }
  for (let c = 0; c < channels; c++) {
    const table = tables[c];
    for (let row = 0; row < height; row++) {
      // FITS stores the bottom row first unless ROWORDER says otherwise.
      const outRow = topDown ? row : height - 1 - row;
      let dst = outRow * width * channels + c;
      const first = c * pixels + row * width;
      const end = first + width;
      if (words !== undefined) {
        for (let src = first; src < end; src++, dst += channels) {
          out[dst] = table[words[src]];
        }
      } else if (bitpix === 8) {
        for (let src = first; src < end; src++, dst += channels) {
          out[dst] = table[bytes[src]];
        }
      } else {
        for (let src = 2 * first; src < 2 * end; src += 2, dst += channels) {
          out[dst] = table[(bytes[src] << 8) | bytes[src + 1]];
        }
      }
    }
  }
}

/**
 * 32-bit integer and float data: BZERO, BSCALE and the normalisation folded into one
 * q = A·stored + B over a quantised table of the transfer function; NaN and BLANK are black.
 * Read straight from the big-endian bytes (no swapped copy).
 */
function mapQuantised(layout: FitsImageLayout, range: ValueRange, params: readonly StretchParameters[], out: Buffer): void {
  const { width, height, channels, bzero, bscale, blank, topDown, pixels: bytes } = layout;
  const bitpix = layout.bitpix as 32 | -32 | -64;
  const view = dataView(bytes);
  const pixels = width * height;
  const blankRaw = blank ?? NaN;
  const top = FLOAT_TABLE_SIZE;
  for (let c = 0; c < channels; c++) {
    const curve = transfer(range, params[c], 255);
    const table = new Uint8Array(top);
    for (let k = 0; k < top; k++) {
      // The middle of each step, so the error is at most half a step either way.
      table[k] = curve.at(((k + 0.5) / top - curve.b) / curve.a);
    }
    const a = curve.a * bscale * top;
    const b = (curve.a * bzero + curve.b) * top;
    for (let row = 0; row < height; row++) {
      const outRow = topDown ? row : height - 1 - row;
      let dst = outRow * width * channels + c;
      const first = c * pixels + row * width;
      const end = first + width;
      // `q > 0` is false for NaN too.
      if (bitpix === -32) {
        for (let i = first; i < end; i++, dst += channels) {
          const q = a * view.getFloat32(4 * i) + b;
          out[dst] = q > 0 ? (q < top ? table[q | 0] : 255) : 0;
        }
      } else if (bitpix === -64) {
        for (let i = first; i < end; i++, dst += channels) {
          const q = a * view.getFloat64(8 * i) + b;
          out[dst] = q > 0 ? (q < top ? table[q | 0] : 255) : 0;
        }
      } else {
        for (let i = first; i < end; i++, dst += channels) {
          const raw = view.getInt32(4 * i);
          const q = a * raw + b;
          out[dst] = raw !== blankRaw && q > 0 ? (q < top ? table[q | 0] : 255) : 0;
        }
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
  const decoded = await decodeForStretch(image.clone(), mode);
  return decoded && stretchDecoded(decoded, mode);
}

/** Samples decoded by libvips at their stored depth (8, 16 or 32-bit float), interleaved. */
export interface DecodedSamples {
  bytes: Uint8Array;
  bits: 8 | 16 | 32;
  width: number;
  height: number;
  channels: 1 | 3;
}

/**
 * The libvips half of {@link stretchIfLinear}: the samples as stored, or undefined when
 * `mode` rules a stretch out before any decode (or the channels are neither 1 nor 3).
 * Changes `image` (a pipeline of its own: sharp's `clone()` blocks the event loop for a large buffer).
 */
export async function decodeForStretch(image: Sharp, mode: StretchMode): Promise<DecodedSamples | undefined> {
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
  const { data, info } = await image
    .removeAlpha()
    .toColourspace(space)
    .raw({ depth: bits === 8 ? 'uchar' : bits === 16 ? 'ushort' : 'float' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 && info.channels !== 3) {
    return undefined;
  }
  return { bytes: data, bits, width: info.width, height: info.height, channels: info.channels };
}

/** The pixel half of {@link stretchIfLinear}: statistics, then the stretch when `mode` says so. */
export function stretchDecoded({ bytes, bits, width, height, channels }: DecodedSamples, mode: StretchMode): RawPixels | undefined {
  const data =
    bits === 8
      ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
      : bits === 16
        ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2)
        : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const range = bits === 8 ? { low: 0, high: 255 } : bits === 16 ? { low: 0, high: 65535 } : floatRange(data);
  const stats = channelStatistics(data, channels, range);
  if (!shouldStretch(mode, stats, bits)) {
    return undefined;
  }
  const pixels = applyStretch(data, channels, range, autoStretchParameters(stats), 8);
  return {
    data: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    raw: { width, height, channels },
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
