import type { StretchMode } from '../../config/image-server-options.js';
import { fitsToSharpInput, stretchDecoded, type DecodedSamples, type FitsIntake, type RawPixels } from './fits-intake.js';

/** A FITS upload: decode, statistics, stretch or linear scale (see `fitsToSharpInput`). */
export interface FitsTask {
  kind: 'fits';
  bytes: Uint8Array;
  mode: StretchMode;
  maxPixels: number;
}

/** Samples libvips decoded from a PNG or TIFF: statistics, then the stretch if they look linear. */
export interface StretchTask {
  kind: 'stretch';
  samples: DecodedSamples;
  mode: StretchMode;
}

/** 32-bit float samples (display values, 0..1 or the file's own peak) down to 8 bits. */
export interface FloatTask {
  kind: 'float';
  bytes: Uint8Array;
}

/** Every pixel loop of the publish path, as a message a worker thread can take. */
export type PixelTask = FitsTask | StretchTask | FloatTask;

/** What each task kind returns. */
export interface PixelResults {
  fits: FitsIntake;
  stretch: RawPixels | undefined;
  float: Uint8Array;
}

/** Runs a task on the calling thread: the worker's body, and the path without a worker. */
export function runPixelTask<T extends PixelTask>(task: T): PixelResults[T['kind']];
export function runPixelTask(task: PixelTask): PixelResults[PixelTask['kind']] {
  switch (task.kind) {
    case 'fits':
      return fitsToSharpInput(asBuffer(task.bytes), task.mode, { maxPixels: task.maxPixels });
    case 'stretch':
      return stretchDecoded(task.samples, task.mode);
    case 'float':
      return floatToBytes(task.bytes);
    default: {
      const unreachable: never = task;
      throw new Error(`unknown pixel task ${JSON.stringify(unreachable)}`);
    }
  }
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
