import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import sharp, { type Raw, type Sharp } from 'sharp';
import { DEFAULT_HOME_LEVEL_SIZE, IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { homeLevelBelowTop, levelSize, topLevel } from './pyramid-levels.js';
import { isVersionName, VERSIONS_FOLDER } from './version-store.js';

/** The options a {@link PyramidBuilder} reads (see ImageServerOptions for each). */
export type PyramidOptions = Pick<ImageServerOptions, 'webFolder' | 'tileSize' | 'tileOverlap' | 'tileFormat' | 'tileQuality' | 'keepVersions'> &
  Partial<Pick<ImageServerOptions, 'homeLevelSize'>>;

/** What was built for one version. */
export interface BuiltPyramid {
  version: number;
  width: number;
  height: number;
  /** Time to build, from the image bytes to the renamed folder. */
  ms: number;
}

/** Name of the descriptor inside a version folder; tiles go to `image_files/`. */
export const DZI_FILE = 'image.dzi';
/** The version's full image beside its pyramid (for a download), when built from bytes. */
export const FULL_IMAGE_FILE = 'image.jpg';
/** What the version shows (object, stack size, time), for the download's file name; never served. */
export const VERSION_INFO_FILE = 'about.json';
/** Present while a version's deep levels are still to be cut (a {@link DeepLevelsPending}); never served. */
export const DEEP_PENDING_FILE = 'deep-pending.json';

/** What a version whose deep levels are not all cut yet records in {@link DEEP_PENDING_FILE}. */
export interface DeepLevelsPending {
  width: number;
  height: number;
  /** The deepest level cut before `new_image`; the levels above it up to {@link topLevel} follow. */
  home: number;
}

/** Decoded pixels (sharp's raw output and its shape). */
export interface RawPixels {
  data: Buffer;
  raw: Raw;
}

/** The pixels a JPEG is encoded from, with its home level's when already shrunk from them (pyramid-levels' shrinkToLevel). */
export interface SourcePixels extends RawPixels {
  home?: RawPixels;
}

/**
 * The most pixels of the home levels' decode kept in memory for the caller (a preview): the
 * default home size's are at most 2048² (12 MB in RGB); a larger `homeLevelSize` is cut
 * streamed from the JPEG as before, without keeping them.
 */
const MAX_KEPT_PIXELS = 4096 * 4096;

/**
 * Builds each version's Deep Zoom pyramid (sharp/libvips `dzsave`) and keeps the web
 * folder bounded. A pyramid is written into a dot-named temp folder under `v/` and renamed
 * to `v/<version>/` in one step, so a version folder is either absent or complete.
 */
@Injectable()
export class PyramidBuilder {
  private readonly root: string;
  private background: Promise<void> = Promise.resolve();

  /** `options` are resolved (checked against OPTION_RANGES) by resolveImageServerOptions. */
  constructor(@Inject(IMAGE_SERVER_OPTIONS) private readonly options: PyramidOptions) {
    this.root = join(options.webFolder, VERSIONS_FOLDER);
  }

  /** Builds `v/<version>/` from an encoded image (JPEG, PNG, TIFF: anything sharp reads). */
  async build(version: number, image: Buffer | string): Promise<BuiltPyramid> {
    const prepared = await this.prepare(image);
    return prepared.commit(version);
  }

  /**
   * Builds a pyramid out of sight, before its version is known: a publish can build it
   * alongside earlier publishes and take its version only when its turn comes to be
   * written. Unless `pixels` are given (those the caller encodes `image` from, at its size:
   * cut instead of a decode of it, while `image` may still be encoding), every block is
   * decoded and libjpeg's warnings fail it as the image check does for JPEGs: a damaged or
   * overwritten image is refused here. With the home level's pixels among them (of its size),
   * its tiles are cut from those as they are: those of a whole pyramid cut from `pixels`.
   * `onPixels` gets the pixels the home levels are cut from, when they are in memory (given,
   * shrunk, or a JPEG's decode of at most {@link MAX_KEPT_PIXELS}), as soon as they are known:
   * before the tiles are cut.
   */
  async prepare(
    image: Buffer | string | Promise<Buffer>,
    { pixels: given, onPixels }: { pixels?: SourcePixels; onPixels?: (pixels: RawPixels) => void } = {},
  ): Promise<PreparedPyramid> {
    const began = performance.now();
    const temp = join(this.root, `.build-0-${process.pid}-${randomBytes(4).toString('hex')}`);
    // Not recursive: a web folder removed meanwhile is an ENOENT for the caller to handle.
    await mkdir(this.root).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') {
        throw err;
      }
    });
    let full: Promise<Buffer> | undefined;
    try {
      await mkdir(temp);
      const fromBytes = typeof image !== 'string';
      // The full image is kept too (a Save), written while libvips cuts the tiles.
      full = fromBytes
        ? Promise.resolve(image).then(async (bytes) => {
            await writeFile(join(temp, FULL_IMAGE_FILE), bytes);
            return bytes;
          })
        : undefined;
      full?.catch(() => undefined);
      // The JPEG's own pixels when the caller has them (it encodes them): no decode of it then.
      const source = given?.raw ?? (await sharp(await image).metadata());
      const { width, height } = source;
      const grey = source.channels === 1;
      // The deep levels are cut later from the version's image.jpg, kept only from bytes.
      const below = fromBytes ? homeLevelBelowTop(width, height, this.options.homeLevelSize ?? DEFAULT_HOME_LEVEL_SIZE) : undefined;
      const home = below ?? topLevel(width, height);
      const reduced = levelSize(width, height, home);
      // Shrunk already (the pixel worker): unless made for another home level size.
      const homeGiven = given?.home;
      const shrunk =
        below !== undefined && homeGiven?.raw.width === reduced.width && homeGiven.raw.height === reduced.height && homeGiven.raw.channels === given?.raw.channels
          ? homeGiven
          : undefined;
      let decoder = shrunk ? sharp(shrunk.data, { raw: shrunk.raw }) : given ? sharp(given.data, { raw: given.raw }) : sharp(await image, { failOn: 'warning' });
      if (below !== undefined && !shrunk) {
        // Home levels only: a JPEG is decoded at 1/2, 1/4 or 1/8 scale (libvips' shrink-on-load).
        decoder = decoder.resize(reduced.width, reduced.height, { fit: 'fill' });
      }
      let pixels: RawPixels | undefined;
      if (shrunk) {
        pixels = shrunk;
      } else if (given && below === undefined) {
        // Cut at full size: the caller's pixels are those kept, not a copy of them through libvips.
        pixels = given;
      } else if (fromBytes && reduced.width * reduced.height <= MAX_KEPT_PIXELS) {
        // Decoded once, kept for the caller too (the history's preview): the same pixels as a
        // streamed cut, so the same tiles.
        const { data, info } = await asDecoded(decoder, grey).raw().toBuffer({ resolveWithObject: true });
        pixels = { data, raw: { width: info.width, height: info.height, channels: info.channels } };
        decoder = sharp(data, { raw: pixels.raw });
      }
      if (pixels) {
        onPixels?.(pixels);
      }
      const info = await this.encodeTiles(decoder, grey).toFile(join(temp, 'image.dz'));
      // libvips' own metadata beside the tiles: never served, so not kept.
      await rm(join(temp, 'image_files', 'vips-properties.xml'), { force: true });
      if (info.width !== width || info.height !== height) {
        // The descriptor names the full image; the deep levels follow (DeepLevels).
        const dzi = await readFile(join(temp, DZI_FILE), 'utf8');
        await writeFile(join(temp, DZI_FILE), dzi.replace(/Height="\d+"/, `Height="${height}"`).replace(/Width="\d+"/, `Width="${width}"`));
        const pending: DeepLevelsPending = { width, height, home };
        await writeFile(join(temp, DEEP_PENDING_FILE), JSON.stringify(pending));
      }
      const bytes = await full;
      if (given && bytes) {
        await assertSize(bytes, given.raw);
      }
      return new PreparedPyramid(temp, this.root, width, height, grey, began);
    } catch (err) {
      // Its write may still wait for the JPEG's encode: the folder goes once it is done.
      await full?.catch(() => undefined);
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
  }

  /** A decoded image with the tile encoder set: what `.tile()` cuts from. `grey`: a one-channel image (see {@link isGrey}). */
  encodeTiles(decoder: Sharp, grey: boolean): Sharp {
    const { tileQuality: quality, tileFormat, tileSize, tileOverlap } = this.options;
    const image = asDecoded(decoder, grey);
    // Huffman optimisation off: ~25 % less CPU per publish for a few % more bytes per tile.
    const encoded = tileFormat === 'webp' ? image.webp({ quality, effort: 0 }) : image.jpeg({ quality, mozjpeg: false, optimiseCoding: false });
    return encoded.tile({ layout: 'dz', size: tileSize, overlap: tileOverlap, container: 'fs' });
  }

  /**
   * Removes the versions older than the newest `keepVersions`, and temp folders left by
   * builds of processes that no longer run. A version is renamed out of sight before it is
   * deleted, so a request sees it whole or gets a 404, never half a folder.
   */
  async prune(keep = this.options.keepVersions): Promise<number[]> {
    const names = await readdir(this.root).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        return [] as string[];
      }
      throw err;
    });
    const versions = names
      .filter(isVersionName)
      .map(Number)
      .sort((a, b) => a - b);
    const old = versions.slice(0, Math.max(0, versions.length - keep));
    const trash = names.filter((name) => {
      if (name.startsWith('.trash-')) {
        return true;
      }
      const pid = /^\.build-\d+-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
      return pid !== undefined && Number(pid) !== process.pid && !isRunning(Number(pid));
    });
    for (const version of old) {
      const name = `.trash-${version}-${randomBytes(4).toString('hex')}`;
      await rename(join(this.root, String(version)), join(this.root, name));
      trash.push(name);
    }
    await Promise.all(trash.map((name) => rm(join(this.root, name), { recursive: true, force: true })));
    return old;
  }

  /**
   * {@link prune} off the caller's path (after a publish), one at a time; `onError` gets a
   * failure, which only costs disk space until the next prune.
   */
  pruneInBackground(onError: (err: Error) => void): void {
    this.background = this.background.then(
      () => this.prune().then(() => undefined, onError),
    );
  }

  /** Resolves once the prunes started in the background so far are done (shutdown, tests). */
  idle(): Promise<void> {
    return this.background;
  }
}

/** A complete pyramid in a temp folder under `v/`, not yet a version. */
export class PreparedPyramid {
  private settled = false;

  constructor(
    private readonly temp: string,
    private readonly root: string,
    readonly width: number,
    readonly height: number,
    /** One channel (see {@link isGrey}): so are its tiles, the deep ones too. */
    readonly grey: boolean,
    private readonly began: number,
  ) {}

  /** Makes it `v/<version>/` in one rename, with `extra` files written in first: from now on it is served. */
  async commit(version: number, extra: Record<string, string | Buffer> = {}): Promise<BuiltPyramid> {
    this.settle();
    try {
      await Promise.all(Object.entries(extra).map(([name, data]) => writeFile(join(this.temp, name), data)));
      await rename(this.temp, join(this.root, String(version)));
    } catch (err) {
      await rm(this.temp, { recursive: true, force: true });
      // Already there, whole (renamed in one step): a replica applying again a version it kept.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
        throw err;
      }
    }
    return { version, width: this.width, height: this.height, ms: Math.round(performance.now() - this.began) };
  }

  /** Removes it (the publish failed or was dropped). */
  async discard(): Promise<void> {
    this.settle();
    await rm(this.temp, { recursive: true, force: true });
  }

  private settle(): void {
    if (this.settled) {
      throw new Error('this pyramid was already committed or discarded');
    }
    this.settled = true;
  }
}

/** Whether an image (a JPEG's bytes or file) has one channel: a mono camera's stack, a FITS. */
export async function isGrey(image: Buffer | string): Promise<boolean> {
  return (await sharp(image).metadata()).channels === 1;
}

/**
 * A grey image stays grey, in its pixels and its tiles: libvips would make it sRGB on the way
 * out, three times the samples to reduce, keep and encode for the same picture.
 */
function asDecoded(decoder: Sharp, grey: boolean): Sharp {
  return grey ? decoder.toColourspace('b-w') : decoder;
}

/** The caller's pixels and JPEG do not go together: a fault of this service, not of the image. */
export class PyramidInputError extends Error {
  override name = 'PyramidInputError';
}

/** The JPEG encoded from `raw` pixels is their size: its tiles were cut from them. */
async function assertSize(jpeg: Buffer, raw: Raw): Promise<void> {
  const { width, height } = await sharp(jpeg).metadata();
  if (width !== raw.width || height !== raw.height) {
    throw new PyramidInputError(`the JPEG is ${width}×${height} but the pixels its pyramid was cut from are ${raw.width}×${raw.height}`);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
