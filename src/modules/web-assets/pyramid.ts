import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { listVersions, VERSIONS_FOLDER } from './version-store.js';

/** How the tiles of each version are encoded (chosen by `npm run bench:tiles`, see the README). */
export interface PyramidOptions {
  /** Tile edge in pixels, overlap excluded. Default 510 (with overlap 1: 512-pixel tiles inside). */
  tileSize: number;
  /** Pixels each tile shares with its neighbours, so seams do not show when scaled. Default 1. */
  overlap: number;
  /** Tile format. Default `jpeg`. */
  format: 'jpeg' | 'webp';
  /** Encoder quality 1–100. Default 80. */
  quality: number;
  /** How many versions stay on disk, the newest; 3–8. Default 4. */
  keep: number;
}

export const DEFAULT_PYRAMID_OPTIONS: Readonly<PyramidOptions> = {
  tileSize: 510,
  overlap: 1,
  format: 'jpeg',
  quality: 80,
  keep: 4,
};

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

/**
 * Builds each version's Deep Zoom pyramid (sharp/libvips `dzsave`) and keeps the web
 * folder bounded. A pyramid is written into a dot-named temp folder under `v/` and renamed
 * to `v/<version>/` in one step, so a version folder is either absent or complete.
 */
export class PyramidBuilder {
  private readonly root: string;
  private readonly options: PyramidOptions;

  constructor(webFolder: string, options: Partial<PyramidOptions> = {}) {
    this.root = join(webFolder, VERSIONS_FOLDER);
    this.options = checkedOptions({ ...DEFAULT_PYRAMID_OPTIONS, ...options });
  }

  get settings(): Readonly<PyramidOptions> {
    return this.options;
  }

  /** Builds `v/<version>/` from an encoded image (JPEG, PNG, TIFF: anything sharp reads). */
  async build(version: number, image: Buffer | string): Promise<BuiltPyramid> {
    const prepared = await this.prepare(image);
    return prepared.commit(version);
  }

  /**
   * Builds a pyramid out of sight, before its version is known: a publish can build it
   * alongside earlier publishes and take its version only when its turn comes to be
   * written. The image is decoded whole, so a damaged image is refused here.
   */
  async prepare(image: Buffer | string): Promise<PreparedPyramid> {
    const began = performance.now();
    await mkdir(this.root, { recursive: true });
    const temp = join(this.root, `.build-0-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(temp);
      const { quality, format, tileSize, overlap } = this.options;
      const encoder = sharp(image, { failOn: 'error' });
      const encoded = format === 'webp' ? encoder.webp({ quality, effort: 0 }) : encoder.jpeg({ quality, mozjpeg: false });
      const info = await encoded.tile({ layout: 'dz', size: tileSize, overlap, container: 'fs' }).toFile(join(temp, 'image.dz'));
      // libvips' own metadata beside the tiles: never served, so not kept.
      await rm(join(temp, 'image_files', 'vips-properties.xml'), { force: true });
      return new PreparedPyramid(temp, this.root, info.width, info.height, began);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Removes the versions older than the newest `keep`, and temp folders left by builds of
   * processes that no longer run. A version is renamed out of sight before it is deleted,
   * so a request sees it whole or gets a 404, never half a folder.
   */
  async prune(): Promise<number[]> {
    const versions = await listVersions(join(this.root, '..'));
    const old = versions.slice(0, Math.max(0, versions.length - this.options.keep));
    for (const version of old) {
      const trash = join(this.root, `.trash-${version}-${randomBytes(4).toString('hex')}`);
      await rename(join(this.root, String(version)), trash);
      await rm(trash, { recursive: true, force: true });
    }
    await this.removeLeftovers();
    return old;
  }

  private async removeLeftovers(): Promise<void> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const stale = names.filter((name) => {
      if (name.startsWith('.trash-')) {
        return true;
      }
      const pid = /^\.build-\d+-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
      return pid !== undefined && Number(pid) !== process.pid && !isRunning(Number(pid));
    });
    await Promise.all(stale.map((name) => rm(join(this.root, name), { recursive: true, force: true })));
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

  /** Makes it `v/<version>/` in one rename: from now on it is served. */
  async commit(version: number): Promise<BuiltPyramid> {
    this.settle();
    try {
      await rename(this.temp, join(this.root, String(version)));
    } catch (err) {
      await rm(this.temp, { recursive: true, force: true });
      throw err;
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

function checkedOptions(options: PyramidOptions): PyramidOptions {
  const problems: string[] = [];
  if (!Number.isInteger(options.tileSize) || options.tileSize < 64 || options.tileSize > 2048) {
    problems.push(`tileSize must be an integer 64–2048, got ${String(options.tileSize)}`);
  }
  if (!Number.isInteger(options.overlap) || options.overlap < 0 || options.overlap > 8) {
    problems.push(`overlap must be an integer 0–8, got ${String(options.overlap)}`);
  }
  if (options.format !== 'jpeg' && options.format !== 'webp') {
    problems.push(`format must be jpeg or webp, got ${String(options.format)}`);
  }
  if (!Number.isInteger(options.quality) || options.quality < 1 || options.quality > 100) {
    problems.push(`quality must be an integer 1–100, got ${String(options.quality)}`);
  }
  if (!Number.isInteger(options.keep) || options.keep < 3 || options.keep > 8) {
    problems.push(`keep must be an integer 3–8, got ${String(options.keep)}`);
  }
  if (problems.length > 0) {
    throw new RangeError(`Invalid pyramid options: ${problems.join('; ')}`);
  }
  return options;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
