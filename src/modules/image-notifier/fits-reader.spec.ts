import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyStretch, autoStretchParameters, channelStatistics, IDENTITY_STRETCH, shouldStretch } from './auto-stretch.js';
import { fitsToSharpInput } from './fits-intake.js';
import { FitsError, fitsMetrics, isFits, MAX_HEADER_BYTES, readFits, type FitsImage } from './fits-reader.js';

const MAKE_FITS = join(import.meta.dirname, '../../../test/fixtures/make-fits.py');

/** The first Python that has astropy: $PYTHON, Debian's own, then whatever is on PATH. */
function pythonWithAstropy(): string {
  const candidates = [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  const found = candidates.find((p) => spawnSync(p, ['-c', 'import astropy'], { stdio: 'ignore' }).status === 0);
  if (!found) {
    throw new Error(`the FITS reference files need astropy (apt-get install python3-astropy); tried ${candidates.join(', ')}`);
  }
  return found;
}

interface Case {
  name: string;
  width: number;
  height: number;
  channels: number;
  bitpix: number;
}

let dir: string;
let cases: Case[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fits-ref-'));
  await promisify(execFile)(pythonWithAstropy(), [MAKE_FITS, dir]);
  cases = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Case[];
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string): Promise<Buffer> {
  return readFile(join(dir, name));
}

async function expected(name: string): Promise<Float32Array> {
  const bytes = await fixture(`${name}.f32`);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** A FITS file from header cards (END added) and raw big-endian data, padded to blocks. */
function fitsBytes(cards: string[], data: Buffer = Buffer.alloc(0), { end = true } = {}): Buffer {
  const text = [...cards, ...(end ? ['END'] : [])].map((c) => c.padEnd(80)).join('');
  const header = Buffer.from(text.padEnd(Math.ceil(text.length / 2880) * 2880), 'latin1');
  const pad = Buffer.alloc((2880 - (data.length % 2880)) % 2880);
  return Buffer.concat([header, data, pad]);
}

function card(keyword: string, value: string | number): string {
  return `${keyword.padEnd(8)}= ${String(value).padStart(20)}`;
}

const GREY_8x2 = [card('SIMPLE', 'T'), card('BITPIX', 8), card('NAXIS', 2), card('NAXIS1', 8), card('NAXIS2', 2)];

function readError(bytes: Uint8Array): FitsError {
  try {
    readFits(bytes);
  } catch (err) {
    if (err instanceof FitsError) {
      return err;
    }
    throw err;
  }
  throw new Error('the file was read without an error');
}

describe('readFits against astropy', () => {
  it('writes every reference case', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(
      ['blank', 'extension', 'f32', 'f32-rgb', 'f64', 'i16', 'i32', 'metrics', 'scaled', 'top-down', 'u16', 'u16-rgb', 'u32', 'u8'].sort(),
    );
  });

  it('reads every pixel of every case as astropy does', async () => {
    for (const c of cases) {
      const image: FitsImage = readFits(await fixture(`${c.name}.fits`));
      const want = await expected(c.name);
      expect({ name: c.name, width: image.width, height: image.height, channels: image.channels, bitpix: image.bitpix }).toEqual({
        name: c.name,
        width: c.width,
        height: c.height,
        channels: c.channels,
        bitpix: c.bitpix,
      });
      expect(image.data.length).toBe(want.length);
      const wrong: string[] = [];
      for (let i = 0; i < want.length; i++) {
        const a = image.data[i];
        const b = want[i];
        const same = Number.isNaN(b) ? Number.isNaN(a) : a === b;
        if (!same) {
          wrong.push(`${c.name}[${i}]: ${a} instead of ${b}`);
        }
      }
      expect(wrong.slice(0, 5)).toEqual([]);
    }
  });

  it('counts NaN and BLANK pixels and leaves them out of min and max', async () => {
    const blank = readFits(await fixture('blank.fits'));
    expect(blank.blankCount).toBe(2);
    expect(blank.min).toBeGreaterThanOrEqual(-1000);
    const f32 = readFits(await fixture('f32.fits'));
    expect(f32.blankCount).toBe(2);
    expect(Number.isFinite(f32.min) && Number.isFinite(f32.max)).toBe(true);
  });

  it('gives each type its display range', async () => {
    const range = async (name: string) => readFits(await fixture(`${name}.fits`)).range;
    expect(await range('u8')).toEqual({ low: 0, high: 255 });
    expect(await range('u16')).toEqual({ low: 0, high: 65535 });
    expect(await range('i16')).toEqual({ low: -32768, high: 32767 });
    expect(await range('f32')).toEqual({ low: 0, high: 1 });
    const i32 = readFits(await fixture('i32.fits'));
    expect(i32.range).toEqual({ low: i32.min, high: i32.max });
  });

  it('takes the metrics from the header cards', async () => {
    const image = readFits(await fixture('metrics.fits'));
    expect(image.header.get('STACKCNT')).toBe(42);
    expect(fitsMetrics(image.header)).toEqual({ stackSize: 42, exposureSeconds: 1234.5 });
  });

  it('refuses tile-compressed FITS, naming the format', async () => {
    const fz = readError(await fixture('compressed.fz'));
    expect(fz.message).toContain('tile-compressed FITS (.fz)');
    expect(fz.kind).toBe('unsupported');
  });

  it('refuses a file cut anywhere in its pixels or header', async () => {
    const whole = await fixture('u16.fits');
    const cut = readError(whole.subarray(0, whole.length - 2880));
    expect(cut.message).toMatch(/^truncated FITS/);
    expect(cut.kind).toBe('damaged');
    expect(readError(whole.subarray(0, 2880 + 1)).message).toMatch(/^truncated FITS/);
    expect(readError(whole.subarray(0, 600)).message).toMatch(/no END card/);
  });
});

describe('fitsToSharpInput (lookup tables, one pass) against readFits + applyStretch', () => {
  it('gives the same 8-bit pixels for every reference case and stretch mode', async () => {
    for (const { name } of cases) {
      const bytes = await fixture(`${name}.fits`);
      const img = readFits(bytes);
      const stats = channelStatistics(img.data, img.channels, img.range);
      for (const mode of ['auto', 'always', 'never'] as const) {
        const stretched = shouldStretch(mode, stats, Math.abs(img.bitpix));
        const params = stretched ? autoStretchParameters(stats) : stats.map(() => IDENTITY_STRETCH);
        const reference = applyStretch(img.data, img.channels, img.range, params, 8);
        const fast = fitsToSharpInput(bytes, mode);
        expect(fast.stretched, `${name} ${mode}`).toBe(stretched);
        expect(fast.raw, name).toEqual({ width: img.width, height: img.height, channels: img.channels });
        let worst = 0;
        for (let i = 0; i < reference.length; i++) {
          worst = Math.max(worst, Math.abs(fast.data[i] - reference[i]));
        }
        // Rounding only: the fast path scales stored values in float64, readFits keeps float32.
        expect(worst, `${name} ${mode}`).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe('readFits on damaged and hostile input', () => {
  it('reads a minimal hand-made file, bottom row first', () => {
    const image = readFits(fitsBytes(GREY_8x2, Buffer.from([...Array(8).keys(), ...Array.from({ length: 8 }, (_, i) => 10 + i)])));
    expect(Array.from(image.data)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('refuses what is not FITS', () => {
    expect(isFits(Buffer.from('\x89PNG\r\n\x1a\n'))).toBe(false);
    const blank = readError(Buffer.alloc(5000, 0x20));
    expect(blank.kind).toBe('unsupported');
    expect(blank.message).toMatch(/^not a FITS file/);
    expect(readError(fitsBytes([card('SIMPLE', 'F'), ...GREY_8x2.slice(1)], Buffer.alloc(16))).message).toMatch(/^not a FITS file/);
  });

  it('refuses a header with no END card', () => {
    expect(readError(fitsBytes(GREY_8x2, Buffer.alloc(0), { end: false })).message).toMatch(/no END card/);
  });

  it('refuses a 64 MB header without END after reading only MAX_HEADER_BYTES of it', () => {
    const comments = Buffer.alloc(64 * 1024 * 1024 - 2880, 'COMMENT'.padEnd(80), 'latin1');
    const huge = Buffer.concat([fitsBytes(GREY_8x2, Buffer.alloc(0), { end: false }), comments]);
    const err = readError(huge);
    expect(err.kind).toBe('damaged');
    expect(err.message).toMatch(new RegExp(`no END card within the first ${MAX_HEADER_BYTES} bytes of headers.*longer headers are refused`));
  });

  it('refuses headers longer than MAX_HEADER_BYTES even with an END card, in one HDU or over several', () => {
    const many = (n: number): string[] => Array.from({ length: n }, (_, i) => `COMMENT ${i}`);
    const long = fitsBytes([...GREY_8x2, ...many(MAX_HEADER_BYTES / 80)], Buffer.alloc(16));
    expect(readError(long).message).toMatch(/longer headers are refused/);
    const primary = fitsBytes([card('SIMPLE', 'T'), card('BITPIX', 8), card('NAXIS', 0), card('EXTEND', 'T'), ...many(MAX_HEADER_BYTES / 160)]);
    const ext = fitsBytes([card('XTENSION', "'IMAGE'"), card('BITPIX', 8), card('NAXIS', 2), card('NAXIS1', 8), card('NAXIS2', 2), card('PCOUNT', 0), card('GCOUNT', 1), ...many(MAX_HEADER_BYTES / 160)], Buffer.alloc(16));
    expect(readError(Buffer.concat([primary, ext])).message).toMatch(/longer headers are refused/);
  });

  it.each([
    ['BITPIX 24', [card('BITPIX', 24)], /unsupported FITS BITPIX 24/],
    ['BITPIX -16', [card('BITPIX', -16)], /unsupported FITS BITPIX -16/],
    ['NAXIS 1', [card('NAXIS', 1)], /NAXIS = 1/],
    ['NAXIS 4', [card('NAXIS', 4), card('NAXIS3', 3), card('NAXIS4', 2)], /NAXIS = 4/],
    ['two planes', [card('NAXIS', 3), card('NAXIS3', 2)], /2 planes/],
    ['a huge image', [card('NAXIS1', 100000), card('NAXIS2', 100000)], /too large/],
    ['a width past 2^53', [card('NAXIS1', '1E300')], /NAXIS1 must be an integer/],
    ['a negative height', [card('NAXIS2', -5)], /NAXIS2 must be an integer/],
    ['a width in quotes', [card('NAXIS1', "'8'")], /NAXIS1 must be an integer/],
    ['an empty image', [card('NAXIS2', 0)], /empty FITS image/],
    ['more pixels than the file', [card('NAXIS1', 4000), card('NAXIS2', 3000)], /^truncated FITS/],
    ['a BZERO that is text', [card('BZERO', "'x'")], /BZERO is not a number/],
  ])('refuses %s', (_name, override, message) => {
    const keys = new Set(override.map((c) => c.slice(0, 8)));
    const cards = [...GREY_8x2.filter((c) => !keys.has(c.slice(0, 8))), ...override];
    expect(readError(fitsBytes(cards, Buffer.alloc(16))).message).toMatch(message);
  });

  it('refuses an extension that claims more bytes than the file holds', () => {
    const primary = fitsBytes([card('SIMPLE', 'T'), card('BITPIX', 8), card('NAXIS', 0), card('EXTEND', 'T')]);
    const ext = fitsBytes([card('XTENSION', "'BINTABLE'"), card('BITPIX', 8), card('NAXIS', 2), card('NAXIS1', 2 ** 40), card('NAXIS2', 2 ** 12), card('PCOUNT', 0), card('GCOUNT', 1)]);
    expect(readError(Buffer.concat([primary, ext])).message).toMatch(/no image/);
  });

  it('never throws anything but FitsError on mutated files', async () => {
    const sources = [await fixture('u16-rgb.fits'), await fixture('extension.fits'), await fixture('blank.fits')];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const outcomes = { read: 0, refused: 0 };
    for (let round = 0; round < 600; round++) {
      const bytes = Buffer.from(sources[round % sources.length]);
      for (let k = 0; k < 1 + random(4); k++) {
        // Mostly the header and the first block of data, where a change matters.
        bytes[random(Math.min(bytes.length, 2880 * 4))] = ' 0123456789=-T/\'E'.charCodeAt(random(17));
      }
      const cut = random(3) === 0 ? bytes.subarray(0, random(bytes.length)) : bytes;
      try {
        readFits(cut, { maxPixels: 10_000_000 });
        outcomes.read++;
      } catch (err) {
        expect(err).toBeInstanceOf(FitsError);
        outcomes.refused++;
      }
    }
    expect(outcomes.read).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  });
});

describe('fitsMetrics', () => {
  const h = (entries: Record<string, number | string>) => new Map(Object.entries(entries));

  it('prefers LIVETIME, else multiplies EXPTIME or EXPOSURE by the stack size', () => {
    expect(fitsMetrics(h({ NCOMBINE: 10, EXPTIME: 30 }))).toEqual({ stackSize: 10, exposureSeconds: 300 });
    expect(fitsMetrics(h({ IMGCOUNT: 4, EXPOSURE: 2.5 }))).toEqual({ stackSize: 4, exposureSeconds: 10 });
    expect(fitsMetrics(h({ STACKCNT: 3, NCOMBINE: 9, LIVETIME: 100, EXPTIME: 60 }))).toEqual({ stackSize: 3, exposureSeconds: 100 });
    expect(fitsMetrics(h({ EXPTIME: 60 }))).toEqual({ exposureSeconds: 60 });
  });

  it('leaves out missing, negative and non-numeric cards', () => {
    expect(fitsMetrics(h({}))).toEqual({});
    expect(fitsMetrics(h({ STACKCNT: -1, EXPTIME: 'long' }))).toEqual({});
  });
});
