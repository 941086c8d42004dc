import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import sharp from 'sharp';
import { DEFAULT_HOME_LEVEL_SIZE, IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { homeLevelBelowTop, levelSize, topLevel } from './pyramid-levels.js';
import { DEEP_PENDING_FILE, FULL_IMAGE_FILE, isGrey, PyramidBuilder, type DeepLevelsPending } from './pyramid.js';
import { isVersionName, VERSIONS_FOLDER } from './version-store.js';

/** One tile of a version, as named under `image_files/`. */
export interface TileName {
  version: number;
  level: number;
  col: number;
  row: number;
  ext: string;
}

/**
 * From this size on, a publish's deep levels are cut from the image it still holds in memory, the
 * moment it is announced ({@link DeepLevels.fromMemory}); a smaller image's are queued and cut
 * from its file, as quick for a short cut.
 */
export const FROM_MEMORY_PIXELS = 24_000_000;

/** How often the tiles asked for during a cut are looked for in it (one check for all who wait). */
const TILE_CHECK_MS = 20;

/**
 * Cuts the levels of each version deeper than its home levels (see PyramidBuilder.prepare):
 * one cut at a time, the newest version first, from the version's full image with the same
 * libvips settings as a full cut (streamed: libvips holds a few strips, never the decoded
 * image), so the tiles are the same bytes. A version's cut starts once it is announced: from its
 * bytes in memory when no cut runs ({@link fromMemory}), else in its turn ({@link enqueue}).
 * A level appears in one rename, and the version's DEEP_PENDING_FILE goes last: after a kill,
 * a restart finds it and cuts again. A deep tile asked for meanwhile is served from the cut's
 * folder as soon as libvips has written it whole ({@link isWholeTile}: the same file, renamed
 * in later, so the same bytes and ETag), or once its version's cut ends.
 */
@Injectable()
export class DeepLevels implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DeepLevels.name);
  private readonly root: string;
  private readonly queued = new Set<number>();
  /** The version being cut. */
  private current: number | undefined;
  /** The folder (under `v/`) the cut under way writes its tiles into. */
  private currentTemp: string | undefined;
  /** Tiles asked for while their version's deep levels are cut (by path under `v/`), with who waits for each. */
  private readonly asked = new Map<string, { version: number; name: string; waiters: Set<(path: string) => void> }>();
  private checking: NodeJS.Timeout | undefined;
  /** A look at the tiles asked for is under way (the next tick skips). */
  private checkingNow = false;
  private job: Promise<void> = Promise.resolve();
  /** Resolvers of those waiting for a version's job to end. */
  private readonly waiting = new Map<number, Array<() => void>>();
  private stopped = false;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS)
    private readonly options: Pick<ImageServerOptions, 'webFolder' | 'tileSize' | 'tileOverlap' | 'tileFormat'> & Partial<Pick<ImageServerOptions, 'homeLevelSize'>>,
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
    // Those waiting for a cut that will not run now go on (a 404, the tile not being there).
    [...this.waiting.keys()].forEach((version) => this.release(version));
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

  /**
   * Cuts the deep levels of `version` (in place, announced) at once from `jpeg`, its bytes still
   * in memory, when it is a big image ({@link FROM_MEMORY_PIXELS}) with deep levels and no other
   * cut runs: true. False otherwise: {@link enqueue} it. `grey`: one channel (its pyramid knows).
   */
  fromMemory(version: number, jpeg: Buffer, width: number, height: number, grey: boolean): boolean {
    const below = homeLevelBelowTop(width, height, this.options.homeLevelSize ?? DEFAULT_HOME_LEVEL_SIZE);
    if (this.stopped || this.current !== undefined || width * height < FROM_MEMORY_PIXELS || below === undefined) {
      return false;
    }
    this.start(version, () => this.cut(version, { image: jpeg, grey }));
    return true;
  }

  /** Resolves once no job runs and none is queued (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.current !== undefined) {
      await this.job;
    }
  }

  /**
   * A tile that is not on disk yet, when it belongs to a deep level still to be cut: its
   * version's cut is started (or moved to the front), and the tile awaited. Resolves with where
   * it is now, a path under `v/`: in the cut's folder once written whole there, else in the
   * version's own once the cut ended; undefined when it is no deep tile still to come.
   */
  async provide(tile: TileName): Promise<string | undefined> {
    const pending = await this.pending(tile.version);
    if (this.stopped || !pending || !this.isDeepTile(tile, pending)) {
      return undefined;
    }
    const name = join('image_files', String(tile.level), `${tile.col}_${tile.row}.${tile.ext}`);
    const ended = this.ended(tile.version);
    this.enqueue(tile.version);
    return (await this.wholeInCut(tile.version, name, ended)) ?? join(String(tile.version), name);
  }

  /**
   * Waits for a tile to be whole in the folder of its version's cut (its path under `v/`), or for
   * `ended` (undefined). The tiles asked for are looked for together, every {@link TILE_CHECK_MS}.
   */
  private async wholeInCut(version: number, name: string, ended: Promise<void>): Promise<string | undefined> {
    const key = join(String(version), name);
    let found: (path: string) => void = () => undefined;
    const whole = new Promise<string>((resolve) => (found = resolve));
    const waiters = this.asked.get(key) ?? { version, name, waiters: new Set() };
    waiters.waiters.add(found);
    this.asked.set(key, waiters);
    this.checking ??= setInterval(() => void this.checkAsked(), TILE_CHECK_MS).unref();
    try {
      return await Promise.race([whole, ended.then(() => undefined)]);
    } finally {
      waiters.waiters.delete(found);
      if (waiters.waiters.size === 0 && this.asked.get(key) === waiters) {
        this.asked.delete(key);
      }
      if (this.asked.size === 0) {
        clearInterval(this.checking);
        this.checking = undefined;
      }
    }
  }

  /** One look at each tile asked for of the version being cut; those whole are served. */
  private async checkAsked(): Promise<void> {
    const temp = this.currentTemp;
    if (this.checkingNow || temp === undefined) {
      return;
    }
    this.checkingNow = true;
    try {
      await Promise.all(
        [...this.asked.values()]
          .filter(({ version }) => version === this.current)
          .map(async ({ name, waiters }) => {
            const path = join(temp, name);
            if (await isWholeTile(join(this.root, path), this.options.tileFormat)) {
              waiters.forEach((found) => found(path));
            }
          }),
      );
    } finally {
      this.checkingNow = false;
    }
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
    this.start(version, () => this.cut(version));
  }

  /** Runs `cut` as the one job, then lets those waiting for `version` go on and takes the next. */
  private start(version: number, cut: () => Promise<void>): void {
    this.current = version;
    this.job = cut()
      .catch((err: Error) => this.logger.warn(`version ${version}: the deep levels could not be cut: ${err.message}`))
      .finally(() => {
        this.release(version);
        this.next();
      });
  }

  /** Those waiting for `version`'s cut go on. */
  private release(version: number): void {
    const resolvers = this.waiting.get(version) ?? [];
    this.waiting.delete(version);
    resolvers.forEach((resolve) => resolve());
  }

  /**
   * The deep levels of one version, cut into a temp folder then moved in: from `source` (its
   * bytes in memory), else from its `image.jpg` when still pending; a pruned version is dropped.
   */
  private async cut(version: number, source?: { image: Buffer; grey: boolean }): Promise<void> {
    if (!source && !(await this.pending(version))) {
      return;
    }
    const temp = this.tempFolder();
    this.currentTemp = basename(temp);
    try {
      const image = source?.image ?? join(this.root, String(version), FULL_IMAGE_FILE);
      const cutting = this.makeTemp(temp).then(async () => this.pyramids.encodeTiles(sharp(image), source?.grey ?? (await isGrey(image))).toFile(join(temp, 'image.dz')));
      if (source) {
        const failed = await cutting.then(() => undefined, (err: Error) => err);
        if (failed) {
          // Cut again from the version's own files, in the queue (where a real failure is logged).
          this.logger.debug(`version ${version}: the deep levels could not be cut from memory (${failed.message}): cut again from image.jpg`);
          this.queued.add(version);
          return;
        }
      } else {
        await cutting;
      }
      await this.moveIn(version, temp);
    } catch (err) {
      // Pruned meanwhile: nothing to finish.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw err;
      }
    } finally {
      this.currentTemp = undefined;
      await rm(temp, { recursive: true, force: true });
    }
  }

  /** Moves the deep levels cut in `temp` into the version, then clears its DEEP_PENDING_FILE; a pruned version is left alone. */
  private async moveIn(version: number, temp: string): Promise<void> {
    const folder = join(this.root, String(version));
    const pending = await this.pending(version);
    if (!pending) {
      return;
    }
    for (let level = pending.home + 1; level <= topLevel(pending.width, pending.height); level++) {
      await this.moveLevel(join(temp, 'image_files', String(level)), join(folder, 'image_files', String(level)));
    }
    await unlink(join(folder, DEEP_PENDING_FILE));
    this.logger.debug(`version ${version}: deep levels ${pending.home + 1}-${topLevel(pending.width, pending.height)} cut`);
  }

  /** Creates `temp` under `v/` (and `v/` itself, not the web folder: one removed is PyramidBuilder's to report). */
  private async makeTemp(temp: string): Promise<void> {
    await mkdir(this.root).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') {
        throw err;
      }
    });
    await mkdir(temp);
  }

  /** A temp folder name under `v/` that PyramidBuilder.prune removes once this process is gone. */
  private tempFolder(): string {
    return join(this.root, `.build-1-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /** A whole level in one rename; where it is there already (a cut killed after moving it), what it lacks linked in beside. */
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

/**
 * True when a tile in a cut's folder is written whole (libvips writes each tile once, in order,
 * and a reader may see it part-written): a JPEG's markers lead to its scan and it ends with its
 * end-of-image marker (FF D9 cannot occur inside the scan: FF is stuffed there), a WebP is as
 * long as its RIFF header says.
 */
export async function isWholeTile(path: string, ext: string): Promise<boolean> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    return false;
  }
  if (ext === 'webp') {
    return bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.readUInt32LE(4) + 8 === bytes.length;
  }
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    return false;
  }
  // The segments before the scan (tables, headers) carry their length: walked, never read as markers.
  for (let at = 2; at + 4 <= bytes.length; at += 2 + bytes.readUInt16BE(at + 2)) {
    if (bytes[at] !== 0xff) {
      return false;
    }
    if (bytes[at + 1] === 0xda) {
      const scan = at + 2 + bytes.readUInt16BE(at + 2);
      return bytes.length >= scan + 2 && bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9;
    }
  }
  return false;
}
