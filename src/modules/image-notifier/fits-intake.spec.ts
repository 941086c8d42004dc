import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodeFits } from '../../../test/fixtures/fits-writer.mjs';
import { encodeTiff } from '../../../test/fixtures/tiff-writer.mjs';
import { combineMetrics, fitsToSharpInput, headerMetrics, stretchIfLinear, type RawPixels } from './fits-intake.js';
import { ImageRejectedError } from './image-rejected.error.js';

const W = 160;
const H = 120;

/** A linear sky: background `sky` (of full scale) with noise, and a few saturated stars. */
function linearSky(channels: 1 | 3, sky: number, full: number): number[] {
  let seed = 11;
  const noise = (): number => {
    seed = (seed * 16807) % 2147483647;
    return (seed / 2147483647 - 0.5) * 0.004;
  };
  const data: number[] = [];
  for (let i = 0; i < W * H; i++) {
    const star = i % 997 === 0;
    for (let c = 0; c < channels; c++) {
      data.push((star ? 1 : sky * (1 + 0.1 * c) + noise()) * full);
    }
  }
  return data;
}

/** The median brightness of the JPEG the publish path would make from these pixels. */
async function jpegMedian({ data, raw }: RawPixels): Promise<number> {
  const jpeg = await sharp(data, { raw }).jpeg({ quality: 90 }).toBuffer();
  const grey = await sharp(jpeg).greyscale().raw().toBuffer();
  return Array.from(grey).sort((a, b) => a - b)[grey.length >> 1];
}

function rejection(run: () => unknown): ImageRejectedError {
  try {
    run();
  } catch (err) {
    if (err instanceof ImageRejectedError) {
      return err;
    }
    throw err;
  }
  throw new Error('not rejected');
}

describe('fitsToSharpInput', () => {
  const u16 = encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 0.03, 65535), cards: { STACKCNT: 12, EXPTIME: 20 } });
  const rgb = encodeFits({ width: W, height: H, channels: 3, bitpix: -32, data: linearSky(3, 0.01, 1), cards: { LIVETIME: 600.5 } });

  it('stretches a linear 16-bit stack so its background sits near 0.25', async () => {
    const out = fitsToSharpInput(u16, 'auto');
    expect(out.stretched).toBe(true);
    expect(out.raw).toEqual({ width: W, height: H, channels: 1 });
    expect(Math.abs((await jpegMedian(out)) - 64)).toBeLessThanOrEqual(4);
    expect(out.metrics).toEqual({ stackSize: 12, exposureSeconds: 240 });
  });

  it('stretches a float colour stack with linked channels', async () => {
    const out = fitsToSharpInput(rgb, 'auto');
    expect(out.stretched).toBe(true);
    expect(out.raw.channels).toBe(3);
    expect(Math.abs((await jpegMedian(out)) - 64)).toBeLessThanOrEqual(6);
    expect(out.metrics).toEqual({ exposureSeconds: 600.5 });
  });

  it('with never, leaves it linear and dark', async () => {
    const out = fitsToSharpInput(u16, 'never');
    expect(out.stretched).toBe(false);
    // 3 % of full scale → 0.03 × 255 ≈ 8.
    expect(Math.abs((await jpegMedian(out)) - 8)).toBeLessThanOrEqual(2);
  });

  it('in auto, leaves a bright (already stretched) image alone; always stretches it', () => {
    const bright = encodeFits({ width: W, height: H, channels: 1, bitpix: 16, data: linearSky(1, 0.4, 65535) });
    expect(fitsToSharpInput(bright, 'auto').stretched).toBe(false);
    expect(fitsToSharpInput(bright, 'always').stretched).toBe(true);
  });

  it('refuses damaged or unsupported FITS with the rejection reasons of the publish path', () => {
    const cut = rejection(() => fitsToSharpInput(u16.subarray(0, u16.length - 3000), 'auto'));
    expect(cut.reason).toBe('corrupt');
    expect(cut.message).toMatch(/^truncated FITS/);
    const notFits = rejection(() => fitsToSharpInput(Buffer.from('hello'), 'auto'));
    expect(notFits.reason).toBe('unsupported-type');
  });
});

describe('stretchIfLinear', () => {
  const tiff16 = encodeTiff({ width: W, height: H, channels: 3, bits: 16, data: linearSky(3, 0.02, 65535) });

  it('stretches a linear 16-bit TIFF', async () => {
    const out = await stretchIfLinear(sharp(tiff16), 'auto');
    expect(out?.raw).toEqual({ width: W, height: H, channels: 3 });
    expect(Math.abs((await jpegMedian(out as RawPixels)) - 64)).toBeLessThanOrEqual(6);
  });

  it('stretches a linear float grey TIFF', async () => {
    const tiff = encodeTiff({ width: W, height: H, channels: 1, bits: 32, float: true, data: linearSky(1, 0.005, 1) });
    const out = await stretchIfLinear(sharp(tiff), 'auto');
    expect(out?.raw.channels).toBe(1);
    expect(Math.abs((await jpegMedian(out as RawPixels)) - 64)).toBeLessThanOrEqual(4);
  });

  it('leaves 8-bit, bright and never alone', async () => {
    const png8 = await sharp(Buffer.alloc(W * H * 3, 5), { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    expect(await stretchIfLinear(sharp(png8), 'auto')).toBeUndefined();
    const bright = encodeTiff({ width: W, height: H, channels: 1, bits: 16, data: linearSky(1, 0.3, 65535) });
    expect(await stretchIfLinear(sharp(bright), 'auto')).toBeUndefined();
    expect(await stretchIfLinear(sharp(tiff16), 'never')).toBeUndefined();
    expect(await stretchIfLinear(sharp(bright), 'always')).toBeDefined();
  });
});

describe('headerMetrics and combineMetrics', () => {
  const h = (cards: Record<string, number>): Map<string, number> => new Map(Object.entries(cards));

  it('one frame\'s EXPTIME without a count stays one frame\'s; with a count or LIVETIME, the total', () => {
    expect(headerMetrics(h({ EXPTIME: 50 }))).toEqual({ frameExposureSeconds: 50 });
    expect(headerMetrics(h({ EXPOSURE: 2.5 }))).toEqual({ frameExposureSeconds: 2.5 });
    expect(headerMetrics(h({ NCOMBINE: 10, EXPTIME: 30 }))).toEqual({ stackSize: 10, exposureSeconds: 300 });
    expect(headerMetrics(h({ LIVETIME: 100, EXPTIME: 60 }))).toEqual({ exposureSeconds: 100 });
  });

  it('EXPTIME is multiplied by the stack size used, whoever gives it', () => {
    expect(combineMetrics({}, { frameExposureSeconds: 50 }, { stackSize: 14, exposureSeconds: 0 })).toEqual({ stackSize: 14, exposureSeconds: 700 });
    expect(combineMetrics({ stackSize: 3 }, { frameExposureSeconds: 50 }, { stackSize: 14 })).toEqual({ stackSize: 3, exposureSeconds: 150 });
    expect(combineMetrics({}, { frameExposureSeconds: 50 }, {})).toEqual({ exposureSeconds: 50 });
  });

  it('the caller wins, then the header, then the fallbacks', () => {
    expect(combineMetrics({ exposureSeconds: 9 }, { stackSize: 4, exposureSeconds: 100 }, { stackSize: 14, exposureSeconds: 140 })).toEqual({ stackSize: 4, exposureSeconds: 9 });
    expect(combineMetrics({}, {}, { stackSize: 14, exposureSeconds: 140 })).toEqual({ stackSize: 14, exposureSeconds: 140 });
    expect(combineMetrics({ stackSize: undefined }, { stackSize: 4 }, {})).toEqual({ stackSize: 4 });
  });
});
