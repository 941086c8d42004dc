import { describe, expect, it } from 'vitest';
import {
  applyStretch,
  autoStretchParameters,
  channelStatistics,
  IDENTITY_STRETCH,
  looksLinear,
  medianOf,
  mtf,
  shouldStretch,
  type ChannelStatistics,
} from './auto-stretch.js';

const UNIT = { low: 0, high: 1 };

describe('mtf', () => {
  it('maps 0, m and 1 to 0, 0.5 and 1, and is the identity at m = 0.5', () => {
    expect(mtf(0.1, 0)).toBe(0);
    expect(mtf(0.1, 0.1)).toBeCloseTo(0.5, 12);
    expect(mtf(0.1, 1)).toBe(1);
    expect(mtf(0.5, 0.3)).toBeCloseTo(0.3, 12);
  });

  it('gives 3x / (2x + 1) for m = 0.25', () => {
    // (0.25 − 1)·0.03 / ((0.5 − 1)·0.03 − 0.25) = 0.09 / 1.06
    expect(mtf(0.25, 0.03)).toBeCloseTo(0.0849056604, 9);
  });
});

describe('medianOf', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(medianOf(Float64Array.from([5, 1, 4, 2, 3]))).toBe(3);
    expect(medianOf(Float64Array.from([4, 1, 3, 2]))).toBe(2.5);
    expect(medianOf(Float64Array.from([7, 7, 7, 1, 7, 7]))).toBe(7);
  });

  it('agrees with a sort on random data', () => {
    let seed = 3;
    for (let round = 0; round < 50; round++) {
      const values = Float64Array.from({ length: 1 + (round * 37) % 501 }, () => {
        seed = (seed * 16807) % 2147483647;
        return seed % 97;
      });
      const sorted = Array.from(values).sort((a, b) => a - b);
      const n = sorted.length;
      const want = n % 2 ? sorted[n >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
      expect(medianOf(values)).toBe(want);
    }
  });
});

describe('channelStatistics', () => {
  it('normalises by the range before the median and the MAD', () => {
    // /100 → 0.01 0.02 0.03 0.04 1; median 0.03; |deviations| 0.02 0.01 0 0.01 0.97 → MAD 0.01
    const [s] = channelStatistics(Float32Array.from([1, 2, 3, 4, 100]), 1, { low: 0, high: 100 });
    expect(s.median).toBeCloseTo(0.03, 6);
    expect(s.mad).toBeCloseTo(0.01, 6);
  });

  it('leaves NaN out and keeps channels apart', () => {
    // R: 0.1 0.2 0.3 (NaN left out) → median 0.2, MAD 0.1; G: 10 20 30 40 over [0, 100] → 0.25, 0.1
    const rg = Float32Array.from([NaN, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4].map((v, i) => (i % 2 ? v * 100 : v)));
    const [r, g] = channelStatistics(rg, 2, UNIT).map((s) => ({ median: s.median, mad: s.mad }));
    expect(r.median).toBeCloseTo(0.2, 6);
    expect(r.mad).toBeCloseTo(0.1, 6);
    expect(g.median).toBeCloseTo(25, 4);
    expect(g.mad).toBeCloseTo(10, 4);
  });

  it('subsamples evenly: 1..1000 with 100 samples takes 1, 11, …, 991', () => {
    const data = Float32Array.from({ length: 1000 }, (_, i) => i + 1);
    const [s] = channelStatistics(data, 1, { low: 0, high: 1 }, 100);
    // Median of 1, 11, …, 991 = (491 + 501) / 2; deviations 5, 5, 15, 15, … → MAD (245 + 255) / 2.
    expect(s.median).toBe(496);
    expect(s.mad).toBe(250);
  });
});

describe('autoStretchParameters', () => {
  it('clips shadows at median − 2.8 MADN and puts the median at 0.25', () => {
    // 0.10 … 0.15, 0.90: median 0.13, MAD 0.02, MADN 0.029652; c0 = 0.13 − 2.8 × 0.029652
    const [s] = channelStatistics(Float32Array.from([0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.9]), 1, UNIT);
    const [p] = autoStretchParameters([s]);
    expect(p.shadows).toBeCloseTo(0.0469744, 6);
    // m = MTF(0.25, 0.13 − c0) = 3 × 0.0830256 / (2 × 0.0830256 + 1)
    expect(p.midtones).toBeCloseTo(0.2136071, 6);
    expect(p.highlights).toBe(1);
  });

  it('clamps a negative shadows clip to 0', () => {
    const [p] = autoStretchParameters([{ median: 0.03, mad: 0.01 }]);
    expect(p.shadows).toBe(0);
    expect(p.midtones).toBeCloseTo(0.0849056604, 9);
  });

  const rgb: ChannelStatistics[] = [
    { median: 0.02, mad: 0.001 },
    { median: 0.04, mad: 0.002 },
    { median: 0.06, mad: 0.003 },
  ];

  it('links channels: the average clip and the average median', () => {
    // clips 0.02 − 0.00415128, 0.04 − 0.00830256, 0.06 − 0.01245384 → mean 0.03169744; m = MTF(0.25, 0.04 − that)
    const params = autoStretchParameters(rgb);
    expect(params).toHaveLength(3);
    for (const p of params) {
      expect(p.shadows).toBeCloseTo(0.03169744, 8);
      expect(p.midtones).toBeCloseTo(0.0245008406, 8);
    }
  });

  it('unlinked, gives each channel its own', () => {
    const params = autoStretchParameters(rgb, { linked: false });
    expect(params.map((p) => p.shadows)).toEqual([expect.closeTo(0.01584872, 8), expect.closeTo(0.03169744, 8), expect.closeTo(0.04754616, 8)]);
    expect(params[0].midtones).toBeCloseTo(0.0123512927, 8);
    expect(params[2].midtones).toBeCloseTo(0.0364535467, 8);
  });

  it('guards a zero MAD with MADN 0.001, as Siril does', () => {
    const [p] = autoStretchParameters([{ median: 0.2, mad: 0 }]);
    expect(p.shadows).toBeCloseTo(0.1972, 10);
    expect(p.midtones).toBeCloseTo(0.008353222, 8);
  });

  it('leaves the midtones alone when the median is black', () => {
    expect(autoStretchParameters([{ median: 0, mad: 0 }])).toEqual([IDENTITY_STRETCH]);
  });

  it('takes other clipping and background targets', () => {
    const [p] = autoStretchParameters([{ median: 0.1, mad: 0 }], { shadowsClipping: 0, targetBackground: 0.5 });
    expect(p.shadows).toBe(0.1);
    expect(p.midtones).toBe(0.5);
  });
});

describe('applyStretch', () => {
  it('puts the median at 0.25 of full scale (8 bits)', () => {
    // m = 0.08490566 (median 0.03, c0 0): MTF(m, 0.01) = 0.0981781 → 25; MTF(m, 0.03) = 0.25 → 64
    const data = Float32Array.from([1, 2, 3, 4, 100]);
    const range = { low: 0, high: 100 };
    const params = autoStretchParameters(channelStatistics(data, 1, range));
    expect(Array.from(applyStretch(data, 1, range, params))).toEqual([25, 46, 64, 79, 255]);
  });

  it('rescales above the shadows clip, and turns NaN and clipped values black', () => {
    // c0 0.0469744, m 0.2136071: MTF(m, (x − c0)/(1 − c0)) × 255 for 0.10 … 0.15, 0.90
    const data = Float32Array.from([0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.9, NaN, 0.01]);
    const [p] = autoStretchParameters(channelStatistics(data.subarray(0, 7), 1, UNIT));
    expect(Array.from(applyStretch(data, 1, UNIT, [p]))).toEqual([45, 53, 60, 66, 73, 79, 247, 0, 0]);
  });

  it('writes 16 bits and applies each channel its own parameters', () => {
    const data = Float32Array.from([0.5, 0.5, 2, -1]);
    const out = applyStretch(data, 2, UNIT, [IDENTITY_STRETCH, { shadows: 0.5, midtones: 0.5, highlights: 1 }], 16);
    expect(out).toBeInstanceOf(Uint16Array);
    // Channel 0 as it is (0.5 → 32768, 2 → white); channel 1 clipped at 0.5 (0.5 → 0, −1 → 0).
    expect(Array.from(out)).toEqual([32768, 0, 65535, 0]);
  });
});

describe('the STRETCH=auto rule', () => {
  const at = (median: number): ChannelStatistics[] => [{ median, mad: 0.001 }];

  it('calls an image linear when it is deeper than 8 bits and its median under 0.12', () => {
    expect(looksLinear(at(0.03), 16)).toBe(true);
    expect(looksLinear(at(0.119), 32)).toBe(true);
    expect(looksLinear(at(0.12), 16)).toBe(false);
    expect(looksLinear(at(0.03), 8)).toBe(false);
    expect(looksLinear([], 16)).toBe(false);
  });

  it('averages the channel medians', () => {
    expect(looksLinear([...at(0.02), ...at(0.02), ...at(0.33)], 16)).toBe(false);
    expect(looksLinear([...at(0.02), ...at(0.02), ...at(0.2)], 16)).toBe(true);
  });

  it('always and never override the statistics', () => {
    expect(shouldStretch('always', at(0.5), 8)).toBe(true);
    expect(shouldStretch('never', at(0.01), 16)).toBe(false);
    expect(shouldStretch('auto', at(0.01), 16)).toBe(true);
  });
});
