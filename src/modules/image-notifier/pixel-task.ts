import type { StretchMode } from '../../config/image-server-options.js';
import { homeLevelBelowTop, shrinkToLevel } from '../web-assets/pyramid-levels.js';
import type { SourcePixels } from '../web-assets/pyramid.js';
import { fitsToSharpInput, stretchDecoded, type DecodedSamples, type FitsIntake, type RawPixels } from './fits-intake.js';

/**
 * Also the pixels of the pyramid's home level (see homeLevel), shrunk from the 8-bit result on
 * the worker, when the result is at most `maxSide` px on a side: the JPEG's own pixels then,
 * which the home levels are cut from (PyramidBuilder.prepare).
 */
export interface HomeLevelOrder {
  /** The pyramid's `homeLevelSize`. */
  limit: number;
  /** `maxImageSize`: a larger result is downsized before its encode (its pixels are not the JPEG's): no home level then. */
  maxSide: number;
}

/** A FITS upload: decode, statistics, stretch or linear scale (see `fitsToSharpInput`). */
export interface FitsTask {
  kind: 'fits';
  bytes: Uint8Array;
  mode: StretchMode;
  maxPixels: number;
  home?: HomeLevelOrder;
}

/** Samples libvips decoded from a PNG or TIFF: statistics, then the stretch if they look linear. */
export interface StretchTask {
  kind: 'stretch';
  samples: DecodedSamples;
  mode: StretchMode;
  home?: HomeLevelOrder;
}

/** 32-bit float samples (display values, 0..1 or the file's own peak) down to 8 bits. */
export interface FloatTask {
  kind: 'float';
  bytes: Uint8Array;
}

/** Every pixel loop of the publish path, as a message a worker thread can take. */
export type PixelTask = FitsTask | StretchTask | FloatTask;

/** What each task kind returns; pixels come with their home level's when ordered ({@link HomeLevelOrder}) and below them. */
export interface PixelResults {
  fits: FitsIntake & SourcePixels;
  stretch: (RawPixels & SourcePixels) | undefined;
  float: Uint8Array;
}

/** Runs a task on the calling thread: the worker's body, and the path without a worker. */
export function runPixelTask<T extends PixelTask>(task: T): PixelResults[T['kind']];
export function runPixelTask(task: PixelTask): PixelResults[PixelTask['kind']] {
  switch (task.kind) {
    case 'fits':
      return withHome(fitsToSharpInput(asBuffer(task.bytes), task.mode, { maxPixels: task.maxPixels }), task.home);
    case 'stretch': {
      const stretched = stretchDecoded(task.samples, task.mode);
      return stretched && withHome(stretched, task.home);
    }
    case 'float':
      return floatToBytes(task.bytes);
    default: {
      const unreachable: never = task;
      throw new Error(`unknown pixel task ${JSON.stringify(unreachable)}`);
    }
  }
}

/** `pixels` with their home level's when `order` asks for it and that level is below them. */
function withHome<T extends RawPixels>(pixels: T, order: HomeLevelOrder | undefined): T & SourcePixels {
  const { width, height } = pixels.raw;
  if (!order || Math.max(width, height) > order.maxSide) {
    return pixels;
  }
  const level = homeLevelBelowTop(width, height, order.limit);
  if (level === undefined) {
    return pixels;
  }
  return { ...pixels, home: shrinkToLevel(pixels, level) };
}

/**
 * libvips takes float RGB as linear light (scRGB) and would add a gamma curve; stackers'
 * float TIFFs hold display values from 0 to 1, so they are scaled to 8 bits as they are
 * (by the file's own maximum when it goes past 1).
 */
export function floatToBytes(data: Uint8Array): Uint8Array {
  const samples = new Float32Array(data.buffer, data.byteOffset, data.length / 4);
  let peak = 0;
  for (const v of samples) {
    if (v > peak) {
      peak = v;
    }
  }
  const scale = peak > 1 ? 255 / peak : 255;
  const bytes = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    bytes[i] = Math.min(255, Math.max(0, Math.round(samples[i] * scale)));
  }
  return bytes;
}

/** A Buffer over the same memory (no copy): what crosses a thread arrives as a Uint8Array. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
