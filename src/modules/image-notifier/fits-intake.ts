import type { Sharp } from 'sharp';
import { FitsError, fitsMetrics, readFits, type FitsMetrics, type FitsReadOptions } from '../sources/fits-reader.js';
import {
  applyStretch,
  autoStretchParameters,
  channelStatistics,
  IDENTITY_STRETCH,
  shouldStretch,
  type StretchMode,
  type ValueRange,
} from './auto-stretch.js';
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

/**
 * Reads a FITS buffer and returns 8-bit pixels for sharp: auto-stretched when `mode` says
 * so (`auto`: when the statistics look linear), else scaled linearly over the type's range.
 * Throws `ImageRejectedError` (`unsupported-type` or `corrupt`) for what cannot be shown.
 */
export function fitsToSharpInput(buffer: Buffer, mode: StretchMode, options?: FitsReadOptions): FitsIntake {
  let image;
  try {
    image = readFits(buffer, options);
  } catch (err) {
    if (err instanceof FitsError) {
      throw new ImageRejectedError(err.kind === 'unsupported' ? 'unsupported-type' : 'corrupt', err.message);
    }
    throw err;
  }
  const { width, height, channels, data, range } = image;
  const stats = channelStatistics(data, channels, range);
  const stretched = shouldStretch(mode, stats, Math.abs(image.bitpix));
  const params = stretched ? autoStretchParameters(stats) : stats.map(() => IDENTITY_STRETCH);
  const pixels = applyStretch(data, channels, range, params, 8);
  return {
    data: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    raw: { width, height, channels },
    metrics: fitsMetrics(image.header),
    stretched,
  };
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
