/**
 * A small FITS image reader (pure, no I/O): the primary HDU, or the first IMAGE extension
 * when the primary holds no data. BITPIX 8, 16, 32, -32, -64 with BZERO / BSCALE / BLANK,
 * grey or 3-plane colour, ROWORDER. Written here because no maintained, permissively
 * licensed npm FITS reader exists; it is tested pixel for pixel against astropy.
 */

/**
 * A FITS file that cannot be read as an image; the message says why. `unsupported`: not
 * FITS, or a kind of FITS this reader does not take; `damaged`: cut short or inconsistent;
 * `too-large`: more pixels than `maxPixels`.
 */
export class FitsError extends Error {
  override name = 'FitsError';

  constructor(
    message: string,
    readonly kind: 'unsupported' | 'damaged' | 'too-large' = 'damaged',
  ) {
    super(message);
  }
}

/** A header value: string, logical, or number (integers and reals alike). */
export type FitsValue = string | boolean | number;

/** The BITPIX values a FITS image may have. */
export type FitsBitpix = 8 | 16 | 32 | -32 | -64;

/** A decoded FITS image. */
export interface FitsImage {
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB, from three planes). */
  channels: 1 | 3;
  /** Physical values (BZERO + BSCALE × stored), interleaved, top row first. Blank and NaN pixels are NaN. */
  data: Float32Array;
  bitpix: FitsBitpix;
  /** Finite minimum and maximum of `data` (0 and 0 when no pixel is finite). */
  min: number;
  max: number;
  /**
   * The span that maps to black..white before any stretch: the type's range for BITPIX
   * 8 and 16, otherwise [0, 1] or [0, 65535] when the data fit, else [min, max].
   */
  range: { low: number; high: number };
  /** Pixels that were NaN or equal to BLANK. */
  blankCount: number;
  /** The cards of the HDU the image came from (keyword → value; the first occurrence wins). */
  header: Map<string, FitsValue>;
}

/** Limits that keep hostile headers from allocating memory or looping. */
export interface FitsReadOptions {
  /** The largest image accepted, in pixels across all channels (default 200 million). */
  maxPixels?: number;
}

const BLOCK = 2880;
const CARD = 80;
const DEFAULT_MAX_PIXELS = 200_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Extensions skipped while looking for an image; a file with more is refused, not walked. */
const MAX_HDUS = 64;
/** Header bytes read in all (360 blocks, 12,960 cards; real headers are a few blocks): a longer one is refused unread. */
export const MAX_HEADER_BYTES = 360 * BLOCK;

/** True when the bytes start like a FITS file (`SIMPLE  =` with the value T). */
export function isFits(bytes: Uint8Array): boolean {
  if (bytes.length < CARD) {
    return false;
  }
  const first = latin1(bytes, 0, CARD);
  return first.startsWith('SIMPLE  =') && parseValue(first.slice(10)) === true;
}

/** Reads the first image of a FITS file; throws `FitsError` for anything it cannot show. */
export function readFits(bytes: Uint8Array, options: FitsReadOptions = {}): FitsImage {
  return decodeFitsImage(locateFitsImage(bytes, options));
}

/**
 * Where the first image of a FITS file is and how to read it, with every card checked and
 * the data proven complete, but no pixel decoded: for callers that map the stored values
 * themselves (a lookup table per stored 16-bit value is faster than floats).
 */
export interface FitsImageLayout {
  width: number;
  height: number;
  channels: 1 | 3;
  bitpix: FitsBitpix;
  bzero: number;
  bscale: number;
  /** The stored value of blank pixels (integer BITPIX only). */
  blank?: number;
  /** Rows stored top row first (`ROWORDER = 'TOP-DOWN'`); FITS' default is bottom-up. */
  topDown: boolean;
  /** The stored samples as in the file: big-endian, one plane after the other. */
  pixels: Uint8Array;
  header: Map<string, FitsValue>;
}

/** Finds the first image of a FITS file (see {@link readFits}); throws `FitsError`. */
export function locateFitsImage(bytes: Uint8Array, options: FitsReadOptions = {}): FitsImageLayout {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!isFits(bytes)) {
    throw new FitsError('not a FITS file (it does not start with SIMPLE = T)', 'unsupported');
  }
  let offset = 0;
  let headerBytes = 0;
  for (let hdu = 0; hdu < MAX_HDUS && offset < bytes.length; hdu++) {
    const { header, dataStart } = readHeader(bytes, offset, hdu, MAX_HEADER_BYTES - headerBytes);
    headerBytes += dataStart - offset;
    if (header.get('ZIMAGE') === true || header.has('ZCMPTYPE')) {
      throw new FitsError('tile-compressed FITS (.fz) is not supported: save the stack uncompressed', 'unsupported');
    }
    const xtension = hdu === 0 ? 'PRIMARY' : String(header.get('XTENSION') ?? '').trim();
    const naxis = intCard(header, 'NAXIS', 0, 999);
    if ((xtension === 'PRIMARY' || xtension === 'IMAGE') && naxis > 0) {
      return imageLayout(bytes, header, dataStart, naxis, maxPixels);
    }
    offset = dataStart + padded(dataSize(header, naxis, xtension));
  }
  throw new FitsError('no image in this FITS file (no HDU with pixel data)', 'unsupported');
}

/** One HDU's cards up to END, reading at most `budget` bytes (the rest of {@link MAX_HEADER_BYTES}). */
function readHeader(bytes: Uint8Array, start: number, hdu: number, budget: number): { header: Map<string, FitsValue>; dataStart: number } {
  const header = new Map<string, FitsValue>();
  const stop = Math.min(bytes.length, start + budget);
  for (let at = start; at + CARD <= stop; at += CARD) {
    const card = latin1(bytes, at, CARD);
    const keyword = card.slice(0, 8).trimEnd();
    if (keyword === 'END') {
      return { header, dataStart: start + padded(at + CARD - start) };
    }
    if (hdu > 0 && at === start && keyword !== 'XTENSION') {
      throw new FitsError(`damaged FITS: extension ${hdu} does not start with XTENSION`);
    }
    if (card.slice(8, 10) === '= ' && !header.has(keyword)) {
      const value = parseValue(card.slice(10));
      if (value !== undefined) {
        header.set(keyword, value);
      }
    }
  }
  if (stop < bytes.length) {
    throw new FitsError(`damaged FITS: no END card within the first ${MAX_HEADER_BYTES} bytes of headers (${MAX_HEADER_BYTES / CARD} cards); longer headers are refused`);
  }
  throw new FitsError(`damaged FITS: header ${hdu} has no END card (the file is cut short or not FITS)`);
}

/** A card's value field: 'string' (with '' escapes), T / F, or a number (D exponents too). */
function parseValue(field: string): FitsValue | undefined {
  const text = field.trimStart();
  if (text.startsWith("'")) {
    let out = '';
    for (let i = 1; i < text.length; i++) {
      if (text[i] === "'") {
        if (text[i + 1] !== "'") {
          return out.trimEnd();
        }
        i++;
      }
      out += text[i];
    }
    return undefined;
  }
  const token = text.split('/')[0].trim();
  if (token === 'T' || token === 'F') {
    return token === 'T';
  }
  if (token === '') {
    return undefined;
  }
  const n = Number(token.replace(/[dD]/, 'e'));
  return Number.isFinite(n) ? n : undefined;
}

function intCard(header: Map<string, FitsValue>, keyword: string, min: number, max: number, fallback?: number): number {
  const value = header.get(keyword) ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new FitsError(`damaged FITS: ${keyword} must be an integer from ${min} to ${max} (got ${String(value)})`);
  }
  return value;
}

/** The byte size of an HDU's data (before padding), checked so hostile values cannot overflow. */
function dataSize(header: Map<string, FitsValue>, naxis: number, xtension: string): number {
  if (naxis === 0) {
    return 0;
  }
  const bitpix = intCard(header, 'BITPIX', -64, 64);
  let elements = 1;
  for (let i = 1; i <= naxis; i++) {
    elements *= intCard(header, `NAXIS${i}`, 0, Number.MAX_SAFE_INTEGER);
  }
  const groups = xtension === 'PRIMARY' ? 1 : intCard(header, 'GCOUNT', 0, Number.MAX_SAFE_INTEGER, 1);
  const heap = xtension === 'PRIMARY' ? 0 : intCard(header, 'PCOUNT', 0, Number.MAX_SAFE_INTEGER, 0);
  const size = (Math.abs(bitpix) / 8) * groups * (heap + elements);
  if (!Number.isSafeInteger(size)) {
    throw new FitsError('damaged FITS: an HDU claims an impossible data size');
  }
  return size;
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function imageLayout(bytes: Uint8Array, header: Map<string, FitsValue>, dataStart: number, naxis: number, maxPixels: number): FitsImageLayout {
  const bitpix = intCard(header, 'BITPIX', -64, 64);
  if (bitpix !== 8 && bitpix !== 16 && bitpix !== 32 && bitpix !== -32 && bitpix !== -64) {
    throw new FitsError(`unsupported FITS BITPIX ${bitpix} (8, 16, 32, -32 and -64 are read)`, 'unsupported');
  }
  if (naxis < 2 || naxis > 3) {
    throw new FitsError(`unsupported FITS image with NAXIS = ${naxis} (a 2-D grey or 3-plane colour image is read)`, 'unsupported');
  }
  const width = intCard(header, 'NAXIS1', 0, Number.MAX_SAFE_INTEGER);
  const height = intCard(header, 'NAXIS2', 0, Number.MAX_SAFE_INTEGER);
  const planes = naxis === 3 ? intCard(header, 'NAXIS3', 0, Number.MAX_SAFE_INTEGER) : 1;
  if (planes !== 1 && planes !== 3) {
    throw new FitsError(`unsupported FITS image with ${planes} planes (1 for grey or 3 for colour)`, 'unsupported');
  }
  if (width === 0 || height === 0) {
    throw new FitsError(`empty FITS image (${width}×${height})`);
  }
  // Checked before anything is allocated; each factor is already a safe integer.
  if (width > maxPixels || height > maxPixels || width * height * planes > maxPixels) {
    throw new FitsError(`FITS image too large: ${width}×${height}×${planes} is more than ${maxPixels} pixels`, 'too-large');
  }
  const bytesPer = Math.abs(bitpix) / 8;
  const need = width * height * planes * bytesPer;
  if (dataStart + need > bytes.length) {
    throw new FitsError(`truncated FITS: the header announces ${need} bytes of pixels, the file holds ${Math.max(0, bytes.length - dataStart)}`);
  }
  const bzero = numberCard(header, 'BZERO', 0);
  const bscale = numberCard(header, 'BSCALE', 1);
  const blank = bitpix > 0 && typeof header.get('BLANK') === 'number' ? (header.get('BLANK') as number) : undefined;
  const topDown = String(header.get('ROWORDER') ?? '').trim().toUpperCase() === 'TOP-DOWN';
  const pixels = bytes.subarray(dataStart, dataStart + need);
  return { width, height, channels: planes, bitpix, bzero, bscale, blank, topDown, pixels, header };
}

/** Decodes every sample of a located image to physical float values. */
function decodeFitsImage(layout: FitsImageLayout): FitsImage {
  const { width, height, channels: planes, bitpix, bzero, bscale, blank, topDown, header } = layout;
  const pixels = width * height;
  const samples = nativeSamples(layout.pixels, bitpix);
  const data = new Float32Array(pixels * planes);
  // Blank is compared before scaling; NaN !== NaN, so a missing BLANK never matches.
  const blankRaw = blank ?? NaN;
  let min = Infinity;
  let max = -Infinity;
  let blankCount = 0;
  for (let plane = 0; plane < planes; plane++) {
    for (let row = 0; row < height; row++) {
      // FITS stores the bottom row first unless ROWORDER says otherwise.
      const outRow = topDown ? row : height - 1 - row;
      let src = plane * pixels + row * width;
      let dst = outRow * width * planes + plane;
      for (let x = 0; x < width; x++, src++, dst += planes) {
        const raw = samples[src];
        if (raw !== raw || raw === blankRaw) {
          data[dst] = NaN;
          blankCount++;
          continue;
        }
        const v = bzero + bscale * raw;
        data[dst] = v;
        if (v < min) {
          min = v;
        }
        if (v > max) {
          max = v;
        }
      }
    }
  }
  if (min > max) {
    min = 0;
    max = 0;
  }
  return {
    width,
    height,
    channels: planes,
    data,
    bitpix,
    min,
    max,
    range: displayRange(bitpix, bzero, bscale, min, max),
    blankCount,
    header,
  };
}

function numberCard(header: Map<string, FitsValue>, keyword: string, fallback: number): number {
  const value = header.get(keyword) ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new FitsError(`damaged FITS: ${keyword} is not a number`);
  }
  return value;
}

/**
 * The big-endian samples as a native typed array, converted in bulk (byte swap, then a
 * typed-array copy). 32-bit integers go to float64 so that BLANK compares exactly.
 */
function nativeSamples(bytes: Uint8Array, bitpix: FitsBitpix): Float32Array | Float64Array {
  if (bitpix === 8) {
    return new Float32Array(bytes);
  }
  const copy = new Uint8Array(bytes);
  const raw = Buffer.from(copy.buffer, 0, copy.length);
  const swapped = LITTLE_ENDIAN ? raw : { swap16: () => raw, swap32: () => raw, swap64: () => raw };
  switch (bitpix) {
    case 16:
      return new Float32Array(new Int16Array(swapped.swap16().buffer, 0, copy.length / 2));
    case 32:
      return new Float64Array(new Int32Array(swapped.swap32().buffer, 0, copy.length / 4));
    case -32:
      return new Float32Array(swapped.swap32().buffer, 0, copy.length / 4);
    case -64:
      return new Float64Array(swapped.swap64().buffer, 0, copy.length / 8);
    default: {
      const unreachable: never = bitpix;
      throw new FitsError(`unsupported FITS BITPIX ${String(unreachable)}`, 'unsupported');
    }
  }
}

/**
 * The span that maps to black..white before any stretch (see `FitsImage.range`), from the
 * data's finite minimum and maximum.
 */
export function displayRange(bitpix: FitsBitpix, bzero: number, bscale: number, min: number, max: number): { low: number; high: number } {
  if (bitpix === 8 || bitpix === 16) {
    const [rawLow, rawHigh] = bitpix === 8 ? [0, 255] : [-32768, 32767];
    const a = bzero + bscale * rawLow;
    const b = bzero + bscale * rawHigh;
    const low = Math.min(a, b);
    // Signed 16-bit data that never goes below zero (a camera's 0..32767) starts at black.
    return { low: low < 0 && min >= 0 ? 0 : low, high: Math.max(a, b) };
  }
  if (min >= 0 && max <= 1) {
    return { low: 0, high: 1 };
  }
  if (min >= 0 && max <= 65535) {
    return { low: 0, high: 65535 };
  }
  return max > min ? { low: min, high: max } : { low: min, high: min + 1 };
}

function latin1(bytes: Uint8Array, start: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, length).toString('latin1');
}

/** Stack metrics a FITS header may carry, in the shape `ImageNotifier.publish` takes. */
export interface FitsMetrics {
  stackSize?: number;
  exposureSeconds?: number;
}

/**
 * The stack size from `STACKCNT`, `NCOMBINE` or `IMGCOUNT`; the total exposure from
 * `LIVETIME`, else `EXPTIME` (or `EXPOSURE`) times the stack size (1 when unknown).
 * Missing, negative or non-numeric cards are left out.
 */
export function fitsMetrics(header: ReadonlyMap<string, FitsValue>): FitsMetrics {
  const card = (keyword: string): number | undefined => {
    const v = header.get(keyword);
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
  };
  const metrics: FitsMetrics = {};
  const count = card('STACKCNT') ?? card('NCOMBINE') ?? card('IMGCOUNT');
  if (count !== undefined && Number.isSafeInteger(Math.round(count))) {
    metrics.stackSize = Math.round(count);
  }
  const live = card('LIVETIME');
  const each = card('EXPTIME') ?? card('EXPOSURE');
  if (live !== undefined) {
    metrics.exposureSeconds = live;
  } else if (each !== undefined) {
    metrics.exposureSeconds = each * (metrics.stackSize ?? 1);
  }
  return metrics;
}
