import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import sharp from 'sharp';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { isVersionName, VERSIONS_FOLDER } from './version-store.js';

/** The options a {@link PyramidBuilder} reads (see ImageServerOptions for each). */
export type PyramidOptions = Pick<ImageServerOptions, 'webFolder' | 'tileSize' | 'tileOverlap' | 'tileFormat' | 'tileQuality' | 'keepVersions'>;

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
   * written. Every block is decoded, and libjpeg's warnings fail it as the image check
   * does for JPEGs: a damaged or overwritten image is refused here.
   */
  async prepare(image: Buffer | string): Promise<PreparedPyramid> {
    const began = performance.now();
    const temp = join(this.root, `.build-0-${process.pid}-${randomBytes(4).toString('hex')}`);
    // Not recursive: a web folder removed meanwhile is an ENOENT for the caller to handle.
    await mkdir(this.root).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') {
        throw err;
      }
    });
    try {
      await mkdir(temp);
      // The full image is kept too (a Save), written while libvips cuts the tiles.
      const full = Buffer.isBuffer(image) ? writeFile(join(temp, FULL_IMAGE_FILE), image) : Promise.resolve();
      full.catch(() => undefined);
      const { tileQuality: quality, tileFormat, tileSize, tileOverlap } = this.options;
      const decoder = sharp(image, { failOn: 'warning' });
      // Huffman optimisation off: ~25 % less CPU per publish for a few % more bytes per tile.
      const encoded = tileFormat === 'webp' ? decoder.webp({ quality, effort: 0 }) : decoder.jpeg({ quality, mozjpeg: false, optimiseCoding: false });
      const info = await encoded.tile({ layout: 'dz', size: tileSize, overlap: tileOverlap, container: 'fs' }).toFile(join(temp, 'image.dz'));
      // libvips' own metadata beside the tiles: never served, so not kept.
      await rm(join(temp, 'image_files', 'vips-properties.xml'), { force: true });
      await full;
      return new PreparedPyramid(temp, this.root, info.width, info.height, began);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
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

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
