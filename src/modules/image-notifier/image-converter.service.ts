import { Inject, Injectable, Optional } from '@nestjs/common';
import sharp, { type Metadata, type Sharp } from 'sharp';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { decodeForStretch, type HeaderMetrics } from './fits-intake.js';
import { FORMAT_NAMES, MEDIA_TYPES, sniffImageFormat, unknownFormatMessage, type ImageFormat } from '../../common/image-format.js';
import type { FitsIdentity } from './fits-identity.js';
import { ImageRejectedError } from './image-rejected.error.js';
import { assertJpegEnds } from './jpeg-check.js';
import { assertCompletePng } from './png-check.js';
import { asBuffer, runPixelTask, type HomeLevelOrder, type PixelResults, type PixelTask } from './pixel-task.js';
import type { SourcePixels } from '../web-assets/pyramid.js';
import { PixelWorkers } from './pixel-workers.service.js';

/** An image ready to be written as web_image.jpg. */
export interface PublishableImage {
  jpeg: Buffer;
  width: number;
  height: number;
  /** What came in. */
  sourceFormat: ImageFormat;
  /** True when `jpeg` is the input, byte for byte. */
  passedThrough: boolean;
  /** True when the auto-stretch was applied (see `stretch` in the options). */
  stretched: boolean;
  /** Stack size, exposure, object and kit from a FITS header (empty for other formats). */
  headerMetrics: HeaderMetrics & FitsIdentity;
  /**
   * The 8-bit pixels `jpeg` was encoded from, at its size (a FITS, or a stretched PNG or TIFF),
   * with those of its home level when below them: its home levels are cut from them rather
   * than from a decode of `jpeg`. Undefined otherwise.
   */
  pixels?: SourcePixels;
}

/**
 * A {@link PublishableImage} whose JPEG may still be encoding: from `pixels`, which already are
 * its size, so its pyramid's home levels can be cut from them meanwhile.
 */
export interface StartedImage extends Omit<PublishableImage, 'jpeg'> {
  jpeg: Buffer | Promise<Buffer>;
}

/**
 * libvips' strictness per format. JPEG: "warning", because a JPEG overwritten in place
 * can mix new and old data that libjpeg only warns about ("corrupt JPEG data") and then
 * decodes as a grey smear. PNG and TIFF: "error", because harmless warnings (an odd ICC
 * profile, a private TIFF tag) are common in stacker output. What libvips misses is
 * checked structurally: a PNG cut before IEND (png-check), a JPEG not decoded whole (jpeg-check).
 */
const FAIL_ON = { jpeg: 'warning', png: 'error', tiff: 'error' } as const;

type SharpFormat = keyof typeof FAIL_ON;

/**
 * How every JPEG made here is encoded (besides `jpegQuality`): without Huffman optimisation, as
 * the tiles are. Its second pass over every coefficient costs a publish several times the encode
 * for a few % of bytes (docs/benchmarks.md, FITS).
 */
const JPEG_ENCODING = { optimiseCoding: false } as const;

/** Decoding a JPEG to 1/8 scale still reads every entropy-coded block, so it proves the file whole. */
const CHECK_DECODE_SIZE = 64;

/**
 * Turns any accepted image (JPEG, PNG, TIFF, FITS; 8 to 32 bits, grey or colour) into the
 * JPEG the viewers get: refuses unknown or damaged input with an `ImageRejectedError`,
 * passes a JPEG that is already fine through untouched, and otherwise decodes, applies
 * the orientation, auto-stretches linear data (option `stretch`; never an 8-bit JPEG),
 * downsizes to `maxImageSize` and encodes at `jpegQuality`.
 */
@Injectable()
export class ImageConverter {
  /** Without `workers`, the pixel loops run on the calling thread (same bytes out). */
  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    @Optional() private readonly workers?: PixelWorkers,
  ) {
    // Process-wide in libvips: one setting for every pipeline (a Pi-class machine: 1).
    if (options.sharpConcurrency > 0) {
      sharp.concurrency(options.sharpConcurrency);
    }
  }

  /**
   * `verifyPixels` (default true) decodes every block of a JPEG published as it is, which
   * catches a file cut in the middle or overwritten in place. The local publish passes
   * false: cutting the version's pyramid decodes every block anyway, so the header and the
   * end marker are checked here and the pixels there.
   * `declaredFormat`: bytes of another format are refused (a PNG sent as image/jpeg).
   * `homeLevel`: pixels made here come with their home level's too (`pixels.home`): for a
   * caller that cuts the pyramid from them (the local publish).
   */
  async toPublishable(input: Buffer, options: ConvertOptions = {}): Promise<PublishableImage> {
    const started = await this.start(input, options);
    return { ...started, jpeg: await started.jpeg };
  }

  /**
   * {@link toPublishable}, resolved as soon as the image is accepted and its pixels known: an
   * image made here from pixels of the JPEG's size (a FITS, a stretched PNG or TIFF within
   * `maxImageSize`) comes with its JPEG still encoding. A failed encode rejects `jpeg`.
   */
  async start(
    input: Buffer,
    { verifyPixels = true, declaredFormat, homeLevel = false }: ConvertOptions = {},
  ): Promise<StartedImage> {
    const home = homeLevel ? this.homeLevelOrder() : undefined;
    // The one sniff of the publish path.
    const format = sniffImageFormat(input);
    if (!format) {
      throw new ImageRejectedError('unsupported-type', unknownFormatMessage(input));
    }
    if (declaredFormat !== undefined && declaredFormat !== format) {
      throw new ImageRejectedError('unsupported-type', `Content-Type is ${MEDIA_TYPES[declaredFormat]} but the body is ${FORMAT_NAMES[format]}`);
    }
    if (format === 'fits') {
      // The reader checks the whole structure and throws ImageRejectedError before any encode.
      const fits = await this.pixels({ kind: 'fits', bytes: input, mode: this.options.stretch, maxPixels: this.options.maxInputPixels, home });
      return { ...(await this.encodeRaw(fits)), sourceFormat: format, passedThrough: false, stretched: fits.stretched, headerMetrics: fits.metrics };
    }
    checkStructure(format, input);
    const meta = await readMetadata(format, input, this.options.maxInputPixels);
    const width = meta.width ?? 0;
    const height = meta.height ?? 0;
    if (format === 'jpeg' && this.canPassThrough(meta)) {
      if (verifyPixels) {
        await decodeFully(format, input, this.options.maxInputPixels);
      }
      return { jpeg: input, width, height, sourceFormat: format, passedThrough: true, stretched: false, headerMetrics: {} };
    }
    try {
      const { stretched, jpeg, ...converted } = await this.convert(format, input, meta, home);
      // An encode still running fails as one awaited here would: a damaged image.
      const encoding = Buffer.isBuffer(jpeg) ? jpeg : jpeg.catch((err: unknown) => Promise.reject(damagedImage(format, err)));
      if (!Buffer.isBuffer(encoding)) {
        // Taken by whoever awaits the JPEG; not an unhandled rejection before that.
        encoding.catch(() => undefined);
      }
      return { ...converted, jpeg: encoding, sourceFormat: format, passedThrough: false, stretched, headerMetrics: {} };
    } catch (err) {
      throw damagedImage(format, err);
    }
  }

  /** Browsers show an upright 8-bit grey or RGB JPEG as it is; anything else is re-encoded. */
  private canPassThrough(meta: Metadata): boolean {
    const fits = Math.max(meta.width ?? 0, meta.height ?? 0) <= this.options.maxImageSize;
    const upright = meta.orientation === undefined || meta.orientation === 1;
    const plain = (meta.space === 'srgb' || meta.space === 'b-w') && meta.depth === 'uchar';
    return fits && upright && plain;
  }

  private async convert(format: SharpFormat, input: Buffer, meta: Metadata, home: HomeLevelOrder | undefined): Promise<EncodingImage & { stretched: boolean }> {
    const max = this.options.maxImageSize;
    const mode = this.options.stretch;
    const grey = meta.channels !== undefined && meta.channels <= 2;
    const open = (): Sharp => {
      // Applies and drops the EXIF / TIFF orientation, so every viewer shows it upright.
      const upright = sharp(input, { failOn: FAIL_ON[format], limitInputPixels: this.options.maxInputPixels }).rotate();
      // Reduced in libvips (streamed, samples kept at their depth) before anything reaches
      // JavaScript: the statistics and the stretch see at most maxImageSize², whatever the input.
      return (meta.hasAlpha ? upright.flatten({ background: '#000000' }) : upright).resize({ width: max, height: max, fit: 'inside', withoutEnlargement: true });
    };
    const image = open();
    // 8-bit JPEGs are never stretched; an 8-bit PNG or TIFF only with `always`.
    const mayStretch = format !== 'jpeg' && (mode === 'always' || (mode === 'auto' && meta.depth !== 'uchar' && meta.depth !== 'char'));
    // A pipeline of its own rather than image.clone(), which blocks the loop on a large input.
    const samples = mayStretch ? await decodeForStretch(open(), mode) : undefined;
    const stretched = samples && (await this.pixels({ kind: 'stretch', samples, mode, home }));
    if (stretched) {
      return { ...(await this.encodeRaw(stretched)), stretched: true };
    }
    if (meta.depth === 'float' || meta.depth === 'double') {
      const pixels = await image.raw({ depth: 'float' }).toColourspace(grey ? 'b-w' : 'scrgb').toBuffer({ resolveWithObject: true });
      const bytes = await this.pixels({ kind: 'float', bytes: pixels.data });
      const { width, height, channels } = pixels.info;
      return { ...(await encoded(sharp(asBuffer(bytes), { raw: { width, height, channels } }).jpeg({ quality: this.options.jpegQuality, ...JPEG_ENCODING }))), stretched: false };
    }
    // 16-bit grey or RGB comes down to 8 bits in libvips' colourspace conversion (a
    // rescale, not a clip). Grey stays grey: a third of the bytes, the same look.
    const jpeg = image.toColourspace(grey ? 'b-w' : 'srgb').jpeg({ quality: this.options.jpegQuality, ...JPEG_ENCODING });
    return { ...(await encoded(jpeg)), stretched: false };
  }

  /** A pixel loop on the worker thread (or here, without one), its input moved there. */
  private async pixels<T extends PixelTask>(task: T): Promise<PixelResults[T['kind']]> {
    if (!this.workers) {
      return runPixelTask(task);
    }
    const moved = await movable(task);
    const input = moved.kind === 'stretch' ? moved.samples.bytes.buffer : moved.bytes.buffer;
    // Shared memory is shared, not moved: only an ArrayBuffer goes in the transfer list.
    const result = await this.workers.run(moved, input instanceof ArrayBuffer ? [input] : []);
    // What crossed the thread is a Uint8Array: sharp wants a Buffer (same memory).
    if (result instanceof Uint8Array) {
      return result;
    }
    return result && { ...result, data: asBuffer(result.data), ...(result.home && { home: { ...result.home, data: asBuffer(result.home.data) } }) };
  }

  /** The worker shrinks the 8-bit pixels to the pyramid's home level too: no resize of them before the tiles. */
  private homeLevelOrder(): HomeLevelOrder {
    return { limit: this.options.homeLevelSize, maxSide: this.options.maxImageSize };
  }

  /**
   * 8-bit raw pixels (stretched or FITS) downsized to `maxImageSize` and encoded by sharp.
   * Within `maxImageSize` they are the JPEG's pixels: returned at once with them, the JPEG
   * still encoding; downsized, once encoded.
   */
  private async encodeRaw({ data, raw, home }: SourcePixels): Promise<EncodingImage> {
    const max = this.options.maxImageSize;
    const jpeg = sharp(data, { raw, limitInputPixels: this.options.maxInputPixels })
      .resize({ width: max, height: max, fit: 'inside', withoutEnlargement: true })
      // Grey stays a one-channel JPEG (libvips would otherwise write it as sRGB).
      .toColourspace(raw.channels === 1 ? 'b-w' : 'srgb')
      .jpeg({ quality: this.options.jpegQuality, ...JPEG_ENCODING });
    if (Math.max(raw.width, raw.height) > max) {
      return encoded(jpeg);
    }
    const encoding = jpeg.toBuffer();
    // Taken by whoever awaits the JPEG; not an unhandled rejection before that.
    encoding.catch(() => undefined);
    return { jpeg: encoding, width: raw.width, height: raw.height, pixels: { data, raw, home } };
  }
}

/** How {@link ImageConverter.start} takes an image (see there). */
export interface ConvertOptions {
  verifyPixels?: boolean;
  declaredFormat?: ImageFormat;
  homeLevel?: boolean;
}

/** A JPEG made here: encoded, or still encoding from `pixels` (its pixels, at its size). */
interface EncodingImage {
  jpeg: Buffer | Promise<Buffer>;
  width: number;
  height: number;
  pixels?: SourcePixels;
}

/** A JPEG encoded, with its size. */
async function encoded(jpeg: Sharp): Promise<EncodingImage> {
  const { data, info } = await jpeg.toBuffer({ resolveWithObject: true });
  return { jpeg: data, width: info.width, height: info.height };
}

/** Bytes copied per turn of the event loop on the way to the worker. */
const COPY_SLICE = 1 << 20;

/**
 * `task` with its input in memory the worker can take over. The caller's buffer stays
 * theirs, and sharp's output cannot be transferred (libvips owns it: postMessage would copy
 * it in one go), so the bytes are copied a slice per turn, never blocking the loop for long.
 * Bytes in shared memory (a FITS upload, see readSizedBody, or a caller's) are read there by
 * the worker, as they are: nothing moves.
 */
async function movable<T extends PixelTask>(task: T): Promise<T> {
  if (task.kind === 'stretch') {
    return { ...task, samples: { ...task.samples, bytes: await copyInSlices(task.samples.bytes) } };
  }
  return { ...task, bytes: task.bytes.buffer instanceof SharedArrayBuffer ? task.bytes : await copyInSlices(task.bytes) };
}

async function copyInSlices(bytes: Uint8Array): Promise<Uint8Array> {
  const copy = new Uint8Array(bytes.length);
  for (let at = 0; at < bytes.length; at += COPY_SLICE) {
    if (at > 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    copy.set(bytes.subarray(at, at + COPY_SLICE), at);
  }
  return copy;
}

function checkStructure(format: SharpFormat, input: Buffer): void {
  switch (format) {
    case 'jpeg':
      // The signature and the end-of-image marker; the header is read with the metadata.
      return assertJpegEnds(input);
    case 'png':
      return assertCompletePng(input);
    case 'tiff':
      // libvips refuses a cut TIFF itself (failOn 'error', and a TIFF is always decoded whole).
      return;
    default: {
      const unreachable: never = format;
      throw new Error(`unknown format ${String(unreachable)}`);
    }
  }
}

/** The header, checked: the right format, a size, and no more than `maxPixels` (before any decode). */
async function readMetadata(format: SharpFormat, input: Buffer, maxPixels: number): Promise<Metadata> {
  let meta: Metadata;
  try {
    // Header only: the pixel limit is checked below, with a message that says so.
    meta = await sharp(input, { failOn: FAIL_ON[format], limitInputPixels: false }).metadata();
  } catch (err) {
    throw damagedImage(format, err);
  }
  if (meta.format !== format) {
    throw new ImageRejectedError('corrupt', `damaged ${NAMES[format]}: it decodes as ${meta.format}`);
  }
  if (!meta.width || !meta.height) {
    throw new ImageRejectedError('corrupt', `damaged ${NAMES[format]}: no image size in its header`);
  }
  if (meta.width * meta.height > maxPixels) {
    throw tooManyPixels(NAMES[format], `${meta.width}×${meta.height}`, meta.width * meta.height, maxPixels);
  }
  return meta;
}

/** Decodes every pixel (cheaply: JPEG shrink-on-load), for an image published as it is. */
async function decodeFully(format: SharpFormat, input: Buffer, maxPixels: number): Promise<void> {
  try {
    await sharp(input, { failOn: FAIL_ON[format], limitInputPixels: maxPixels })
      .resize({ width: CHECK_DECODE_SIZE, height: CHECK_DECODE_SIZE, fit: 'inside' })
      .raw()
      .toBuffer();
  } catch (err) {
    throw damagedImage(format, err);
  }
}

const NAMES: Record<SharpFormat, string> = { jpeg: 'JPEG', png: 'PNG', tiff: 'TIFF' };

/** The 413 of an image with more pixels than `maxInputPixels`, e.g. "TIFF too large: 16383×16383 …". */
export function tooManyPixels(format: string, size: string, pixels: number, maxPixels: number): ImageRejectedError {
  return new ImageRejectedError(
    'too-large',
    `${format} too large: ${size} is ${pixels} pixels, more than the ${maxPixels} allowed (MAX_INPUT_PIXELS); nothing was decoded`,
  );
}

/** A decoder's error as the `ImageRejectedError` a sender reads ("damaged JPEG: …", "truncated TIFF: …"). */
export function damagedImage(format: SharpFormat, err: unknown): ImageRejectedError {
  if (err instanceof ImageRejectedError) {
    return err;
  }
  const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();
  // libtiff names a cut file by its short read ("Read error at scanline …; got n bytes, expected m").
  const cut = format === 'tiff' && /read error|got \d+ bytes, expected|unexpected end|premature end/i.test(reason);
  return new ImageRejectedError('corrupt', `${cut ? 'truncated' : 'damaged'} ${NAMES[format]}: ${reason}`);
}
