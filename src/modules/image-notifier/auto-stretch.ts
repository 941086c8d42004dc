/**
 * PixInsight's automatic screen transfer function (auto-STF) as Siril applies it: a
 * shadows clip at median − 2.8 MADN and a midtones balance that puts the background at
 * 0.25, channels linked. Pure functions over linear pixel values.
 */

import type { StretchMode } from '../../config/image-server-options.js';

export type { StretchMode };

/** The span of input values that maps to 0..1 (black..white) before the stretch. */
export interface ValueRange {
  low: number;
  high: number;
}

/** One channel's statistics on values normalised to 0..1 (by a `ValueRange`). */
export interface ChannelStatistics {
  median: number;
  /** Median absolute deviation from the median (not yet scaled by 1.4826). */
  mad: number;
}

/** A screen transfer function: clip below `shadows`, above `highlights`, then MTF(`midtones`, x). */
export interface StretchParameters {
  shadows: number;
  midtones: number;
  highlights: number;
}

/** Leaves values as they are (MTF(0.5, x) = x). */
export const IDENTITY_STRETCH: StretchParameters = { shadows: 0, midtones: 0.5, highlights: 1 };

/** Auto-STF settings; the defaults are PixInsight's and Siril's. */
export interface AutoStretchOptions {
  /** Shadows clipping point in MADN from the median (default −2.8). */
  shadowsClipping?: number;
  /** Where the background (the median) lands after the stretch (default 0.25). */
  targetBackground?: number;
  /** One transfer function for all channels from their averaged statistics (default true). */
  linked?: boolean;
}

/** Normalises the MAD to a standard deviation for normally distributed data. */
export const MAD_NORMALISATION = 1.4826;

/**
 * `auto` stretches an image when it is not 8-bit and the average of its channel medians,
 * normalised to its value range, is below this: linear stacks keep the sky at 0.2–5 % of
 * full scale, while a stretched image puts it near 10–25 %.
 */
export const LINEAR_MEDIAN_LIMIT = 0.12;

/** Samples per channel for the statistics: enough for a stable median, fast at 24 MP. */
const DEFAULT_SAMPLES = 250_000;

/** Siril's guard when the MAD is 0 (a flat or synthetic image), so the clip stays below the median. */
const MIN_MADN = 0.001;

/** The midtones transfer function: MTF(m, 0) = 0, MTF(m, m) = 0.5, MTF(m, 1) = 1. */
export function mtf(m: number, x: number): number {
  if (x <= 0) {
    return 0;
  }
  if (x >= 1) {
    return 1;
  }
  return ((m - 1) * x) / ((2 * m - 1) * x - m);
}

/**
 * Median and MAD per channel of interleaved `data`, normalised by `range`, from an even
 * subsample of at most `maxSamples` pixels per channel. NaN (blank) pixels are left out.
 */
export function channelStatistics(data: ArrayLike<number>, channels: number, range: ValueRange, maxSamples = DEFAULT_SAMPLES): ChannelStatistics[] {
  const pixels = Math.floor(data.length / channels);
  const step = Math.max(1, Math.floor(pixels / maxSamples));
  const scale = 1 / (range.high - range.low);
  const stats: ChannelStatistics[] = [];
  for (let c = 0; c < channels; c++) {
    const samples = new Float64Array(Math.ceil(pixels / step));
    let n = 0;
    for (let p = 0; p < pixels; p += step) {
      const v = data[p * channels + c];
      if (!Number.isNaN(v)) {
        samples[n++] = (v - range.low) * scale;
      }
    }
    if (n === 0) {
      stats.push({ median: 0, mad: 0 });
      continue;
    }
    const values = samples.subarray(0, n);
    const median = medianOf(values);
    for (let i = 0; i < n; i++) {
      values[i] = Math.abs(values[i] - median);
    }
    stats.push({ median, mad: medianOf(values) });
  }
  return stats;
}

/**
 * The auto-STF for each channel. Linked (the default, as Siril's linked mode): one shadows
 * clip from the average of the channels' clips and one midtones balance from the average
 * median, so colours keep their balance. Unlinked: each channel on its own statistics.
 */
export function autoStretchParameters(stats: readonly ChannelStatistics[], options: AutoStretchOptions = {}): StretchParameters[] {
  const clipping = options.shadowsClipping ?? -2.8;
  const target = options.targetBackground ?? 0.25;
  const linked = options.linked ?? true;
  const clipOf = (s: ChannelStatistics): number => s.median + clipping * (s.mad === 0 ? MIN_MADN : s.mad * MAD_NORMALISATION);
  const paramsFor = (median: number, clip: number): StretchParameters => {
    const shadows = Math.min(1, Math.max(0, clip));
    // A median at or below the clip (more than half the pixels black) gets no midtones change.
    const midtones = median > shadows ? mtf(target, median - shadows) : 0.5;
    return { shadows, midtones, highlights: 1 };
  };
  if (!linked) {
    return stats.map((s) => paramsFor(s.median, clipOf(s)));
  }
  const median = average(stats.map((s) => s.median));
  const params = paramsFor(median, average(stats.map(clipOf)));
  return stats.map(() => ({ ...params }));
}

/**
 * Applies one transfer function per channel to interleaved linear `data` (normalised by
 * `range`) and returns interleaved 8-bit (or 16-bit) display values; NaN becomes black.
 * Integer samples go through a lookup table, floats through the formula.
 */
export function applyStretch(
  data: Float32Array | Uint16Array | Uint8Array,
  channels: number,
  range: ValueRange,
  params: readonly StretchParameters[],
  depth: 8 | 16 = 8,
): Uint8Array | Uint16Array {
  const out = depth === 8 ? new Uint8Array(data.length) : new Uint16Array(data.length);
  const full = depth === 8 ? 255 : 65535;
  for (let c = 0; c < channels; c++) {
    const curve = transfer(range, params[c], full);
    if (data instanceof Float32Array) {
      stretchFloats(data, c, channels, curve, out);
    } else {
      const lut = depth === 8 ? new Uint8Array(data instanceof Uint8Array ? 256 : 65536) : new Uint16Array(data instanceof Uint8Array ? 256 : 65536);
      for (let v = 0; v < lut.length; v++) {
        lut[v] = curve.at(v);
      }
      for (let i = c; i < data.length; i += channels) {
        out[i] = lut[data[i]];
      }
    }
  }
  return out;
}

/** A transfer function folded for fast loops: t = a·x + b, then MTF(m, t) scaled to `full`. */
export interface Transfer {
  a: number;
  b: number;
  m: number;
  full: number;
  at(x: number): number;
}

/** x → t = (x − low)/span, then (t − shadows)/(highlights − shadows), folded into one a·x + b; then MTF. */
export function transfer(range: ValueRange, { shadows, midtones: m, highlights }: StretchParameters, full: number): Transfer {
  const scale = 1 / (range.high - range.low);
  const a = scale / (highlights - shadows);
  const b = (-range.low * scale - shadows) / (highlights - shadows);
  return {
    a,
    b,
    m,
    full,
    at(x: number): number {
      const t = a * x + b;
      // `!(t > 0)` also catches NaN.
      return !(t > 0) ? 0 : t >= 1 ? full : Math.round((((m - 1) * t) / ((2 * m - 1) * t - m)) * full);
    },
  };
}

function stretchFloats(data: Float32Array, first: number, step: number, { a, b, m, full }: Transfer, out: Uint8Array | Uint16Array): void {
  const k1 = (m - 1) * full;
  const k2 = 2 * m - 1;
  for (let i = first; i < data.length; i += step) {
    const t = a * data[i] + b;
    out[i] = !(t > 0) ? 0 : t >= 1 ? full : (k1 * t) / (k2 * t - m) + 0.5;
  }
}

/**
 * The `STRETCH=auto` rule: an image looks linear when it is not 8-bit and the average of
 * its channel medians (normalised to its value range) is below `LINEAR_MEDIAN_LIMIT`.
 */
export function looksLinear(stats: readonly ChannelStatistics[], bitsPerSample: number): boolean {
  return bitsPerSample > 8 && stats.length > 0 && average(stats.map((s) => s.median)) < LINEAR_MEDIAN_LIMIT;
}

/** Whether `mode` stretches an image with these statistics. */
export function shouldStretch(mode: StretchMode, stats: readonly ChannelStatistics[], bitsPerSample: number): boolean {
  switch (mode) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'auto':
      return looksLinear(stats, bitsPerSample);
    default: {
      const unreachable: never = mode;
      throw new Error(`unknown stretch mode ${String(unreachable)}`);
    }
  }
}

function average(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** The median of `values` (reordered in place); the mean of the two middle values when even. */
export function medianOf(values: Float64Array): number {
  const n = values.length;
  if (n === 0) {
    return NaN;
  }
  const half = n >> 1;
  const upper = select(values, half);
  if (n % 2 === 1) {
    return upper;
  }
  // After select, everything below `half` is ≤ values[half]: the lower middle is their maximum.
  let lower = values[0];
  for (let i = 1; i < half; i++) {
    if (values[i] > lower) {
      lower = values[i];
    }
  }
  return (lower + upper) / 2;
}

/** Hoare's quickselect: puts the k-th smallest at index k, smaller ones before it. */
function select(a: Float64Array, k: number): number {
  let left = 0;
  let right = a.length - 1;
  while (left < right) {
    const pivot = a[(left + right) >> 1];
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i] < pivot) {
        i++;
      }
      while (a[j] > pivot) {
        j--;
      }
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) {
      right = j;
    } else if (k >= i) {
      left = i;
    } else {
      break;
    }
  }
  return a[k];
}
