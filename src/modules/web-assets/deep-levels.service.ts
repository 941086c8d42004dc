import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import sharp from 'sharp';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { DEEP_PENDING_FILE, FULL_IMAGE_FILE, levelSize, PyramidBuilder, topLevel, type DeepLevelsPending } from './pyramid.js';
import { isVersionName, VERSIONS_FOLDER } from './version-store.js';

/** A version's full image, decoded once for its deep levels and the tiles asked for meanwhile. */
interface DecodedImage {
  data: Buffer;
  info: { width: number; height: number; channels: 1 | 2 | 3 | 4 };
}

/** One tile of a version, as named under `image_files/`. */
export interface TileName {
  version: number;
  level: number;
  col: number;
  row: number;
  ext: string;
}

/**
 * Cuts the levels of each version deeper than its home levels (see PyramidBuilder.prepare),
 * after `new_image`: one version at a time, the newest first, from the version's full image
 * with the same libvips settings as a full cut, so the tiles are the same bytes. A level
 * appears in one rename (or tile by tile, each linked in whole), and the version's
 * DEEP_PENDING_FILE goes last: after a kill, a restart finds it and cuts again.
 */
@Injectable()
export class DeepLevels implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DeepLevels.name);
  private readonly root: string;
  private readonly queued = new Set<number>();
  private current: number | undefined;
  private job: Promise<void> = Promise.resolve();
  /** The decoded image of the version being cut, once decoded (tiles of its top level are cut from it). */
  private decoded: { version: number; image: Promise<DecodedImage | undefined> } | undefined;
  /** Resolvers of those waiting for a version's job to end. */
  private readonly waiting = new Map<number, Array<() => void>>();
  /** Resolvers of those waiting for the next job to start. */
  private starting: Array<() => void> = [];
  private stopped = false;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: Pick<ImageServerOptions, 'webFolder' | 'tileSize' | 'tileOverlap' | 'tileFormat'>,
    private readonly pyramids: PyramidBuilder,
  ) {
    this.root = join(options.webFolder, VERSIONS_FOLDER);
  }

  /** A restart finishes what a stopped process left: every kept version still pending. */
  async onApplicationBootstrap(): Promise<void> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    for (const name of names.filter(isVersionName)) {
      if (await this.pending(Number(name))) {
        this.enqueue(Number(name));
      }
    }
  }

  /** Lets the cut under way finish (its temp folder removed): no write into a web folder after shutdown. */
  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.queued.clear();
    await this.job;
  }

  /** Cuts the deep levels of `version` in the background (nothing when it has none pending). */
  enqueue(version: number): void {
    if (this.stopped || this.current === version) {
      return;
    }
    this.queued.add(version);
    if (this.current === undefined) {
      this.next();
    }
  }

  /** Resolves once no job runs and none is queued (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.current !== undefined) {
      await this.job;
    }
  }

  /**
   * Makes a tile that is not on disk yet, when it belongs to a deep level still to be cut:
   * a tile of the top level is cut from the decoded image (the same bytes as the full cut),
   * any other waits for its level. True when the tile should now be on disk.
   */
  async provide(tile: TileName): Promise<boolean> {
    const pending = await this.pending(tile.version);
    if (this.stopped || !pending || !this.isDeepTile(tile, pending)) {
      return false;
    }
    let over = false;
    const ended = this.ended(tile.version).then(() => {
      over = true;
    });
    this.enqueue(tile.version);
    if (tile.level === topLevel(pending.width, pending.height)) {
      while (!over) {
        if (this.decoded?.version === tile.version) {
          const image = await this.decoded.image;
          if (image) {
            await this.cutTile(tile, image);
            return true;
          }
          break;
        }
        await Promise.race([ended, new Promise<void>((resolve) => this.starting.push(resolve))]);
      }
    }
    await ended;
    return true;
  }

  private isDeepTile({ level, col, row, ext }: TileName, pending: DeepLevelsPending): boolean {
    if (ext !== this.options.tileFormat || level <= pending.home || level > topLevel(pending.width, pending.height)) {
      return false;
    }
    const size = levelSize(pending.width, pending.height, level);
    return col < Math.ceil(size.width / this.options.tileSize) && row < Math.ceil(size.height / this.options.tileSize);
  }

  private ended(version: number): Promise<void> {
    return new Promise((resolve) => {
      const list = this.waiting.get(version) ?? [];
      list.push(resolve);
      this.waiting.set(version, list);
    });
  }

  private next(): void {
    if (this.stopped || this.queued.size === 0) {
      this.current = undefined;
      return;
    }
    const version = Math.max(...this.queued);
    this.queued.delete(version);
    this.current = version;
    const image = this.decode(version);
    this.decoded = { version, image: image.catch(() => undefined) };
    this.starting.splice(0).forEach((resolve) => resolve());
    this.job = this.cut(version, image)
      .catch((err: Error) => this.logger.warn(`version ${version}: the deep levels could not be cut: ${err.message}`))
      .finally(() => {
        this.decoded = undefined;
        const resolvers = this.waiting.get(version) ?? [];
        this.waiting.delete(version);
        resolvers.forEach((resolve) => resolve());
        this.next();
      });
  }

  /** The deep levels of one version, cut into a temp folder then moved in; a pruned version is dropped. */
  private async cut(version: number, image: Promise<DecodedImage | undefined>): Promise<void> {
    const folder = join(this.root, String(version));
    const pending = await this.pending(version);
    const decoded = await image;
    if (!pending || !decoded) {
      return;
    }
    const { data, info } = decoded;
    const temp = join(this.root, `.build-1-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(temp);
      await this.pyramids.encodeTiles(sharp(data, { raw: info })).toFile(join(temp, 'image.dz'));
      for (let level = pending.home + 1; level <= topLevel(pending.width, pending.height); level++) {
        await this.moveLevel(join(temp, 'image_files', String(level)), join(folder, 'image_files', String(level)));
      }
      await unlink(join(folder, DEEP_PENDING_FILE));
      this.logger.debug(`version ${version}: deep levels ${pending.home + 1}-${topLevel(pending.width, pending.height)} cut`);
    } catch (err) {
      // Pruned meanwhile: nothing to finish.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw err;
      }
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }

  /** A whole level in one rename; where tiles were cut on request already, the others linked in beside them. */
  private async moveLevel(from: string, to: string): Promise<void> {
    try {
      await rename(from, to);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
        throw err;
      }
    }
    for (const name of await readdir(from)) {
      await link(join(from, name), join(to, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') {
          throw err;
        }
      });
    }
  }

  /** The version's full image, decoded; undefined when it has nothing pending. */
  private async decode(version: number): Promise<DecodedImage | undefined> {
    if (!(await this.pending(version))) {
      return undefined;
    }
    const { data, info } = await sharp(join(this.root, String(version), FULL_IMAGE_FILE)).raw().toBuffer({ resolveWithObject: true });
    return { data, info: { width: info.width, height: info.height, channels: info.channels } };
  }

  /** One top-level tile from the decoded image, written beside and linked in (never over a tile already there). */
  private async cutTile({ version, level, col, row, ext }: TileName, image: DecodedImage): Promise<void> {
    const { tileSize: size, tileOverlap: overlap } = this.options;
    const left = Math.max(0, col * size - overlap);
    const top = Math.max(0, row * size - overlap);
    const right = Math.min(image.info.width, (col + 1) * size + overlap);
    const bottom = Math.min(image.info.height, (row + 1) * size + overlap);
    const region = { left, top, width: right - left, height: bottom - top };
    const bytes = await this.pyramids.encodeTile(sharp(image.data, { raw: image.info }).extract(region)).toBuffer();
    const dir = join(this.root, String(version), 'image_files', String(level));
    const temp = join(dir, `.tile-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: false }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') {
          throw err;
        }
      });
      await writeFile(temp, bytes);
      await link(temp, join(dir, `${col}_${row}.${ext}`));
    } catch (err) {
      // Already there (the job or another request), or the version pruned: the caller looks again.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOENT') {
        throw err;
      }
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** What DEEP_PENDING_FILE says, or undefined when the version is complete, pruned or unreadable. */
  private async pending(version: number): Promise<DeepLevelsPending | undefined> {
    try {
      const parsed = JSON.parse(await readFile(join(this.root, String(version), DEEP_PENDING_FILE), 'utf8')) as Partial<DeepLevelsPending>;
      const { width, height, home } = parsed;
      return Number.isSafeInteger(width) && Number.isSafeInteger(height) && Number.isSafeInteger(home)
        ? { width: width as number, height: height as number, home: home as number }
        : undefined;
    } catch {
      return undefined;
    }
  }
}
