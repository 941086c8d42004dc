import { Inject, Injectable, Logger } from '@nestjs/common';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { SerialQueue } from '../../common/serial-queue.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { FileStorage } from '../web-assets/file-storage.repository.js';
import type { RawPixels } from '../web-assets/pyramid.js';
import { DATA_FILE, IMAGE_FILE } from '../web-assets/web-assets.service.js';

/** The folder under the web folder that holds the previews (`h/<version>.jpg`) and the index. */
export const HISTORY_FOLDER = 'h';
const INDEX_FILE = 'index.json';
/** Cached timelapses, `<from>-<to>-<width>.webp`, beside the previews. */
const TIMELAPSE_FOLDER = 'timelapse';
const TIMELAPSE_NAME = /^([1-9]\d{0,15})-([1-9]\d{0,15})-([1-9]\d{0,3})\.webp$/;
/** Longest side of a preview. */
export const PREVIEW_SIZE = 1280;
/** Time each frame of a timelapse is shown. */
const TIMELAPSE_FRAME_MS = 100;

/** One moment of the night, as `GET /api/history` lists it. */
export interface HistoryFrame {
  version: number;
  /** When the version was published (ISO 8601). */
  at: string;
  stackSize: number;
  /** Total exposure in seconds. */
  exposure: number;
  object: string | null;
}

interface StoredFrame extends HistoryFrame {
  /** Size of the preview on disk. */
  bytes: number;
}

interface CachedTimelapse {
  from: number;
  to: number;
  bytes: number;
}

/** A timelapse's frames and size, resolved from the query against the frames kept. */
export interface TimelapseRequest {
  from?: number;
  to?: number;
  width: number;
}

/** No frame lies in the range asked for (or the history is empty or off). */
export class NoFramesError extends Error {
  override name = 'NoFramesError';
}

/**
 * The night's history: a preview (longest side ≤ 1280 px) and the metrics of every version,
 * under `<webFolder>/h/`, with an index written atomically, so it survives restarts. It
 * never holds more than `historyBudgetMb` on disk (previews, index, cached timelapses): when
 * full, cached timelapses go first, then frames are thinned evenly, keeping the first and
 * the latest. Every change runs in one queue.
 */
@Injectable()
export class HistoryService {
  private readonly logger = new Logger(HistoryService.name);
  private readonly folder: string;
  private readonly webFolder: string;
  private readonly budgetBytes: number;
  private readonly queue = new SerialQueue();
  /** Timelapses are built one at a time, outside the queue (seconds of CPU each). */
  private readonly builds = new SerialQueue();
  private readonly building = new Map<string, Promise<string>>();
  private frames: StoredFrame[] = [];
  private readonly timelapses = new Map<string, CachedTimelapse>();
  private indexBytes = 0;
  private opened: Promise<void> | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) options: Pick<ImageServerOptions, 'webFolder' | 'historyBudgetMb'>,
    private readonly storage: FileStorage,
  ) {
    this.webFolder = options.webFolder;
    this.folder = join(options.webFolder, HISTORY_FOLDER);
    this.budgetBytes = Math.floor(options.historyBudgetMb * 1024 * 1024);
  }

  /** False with `historyBudgetMb: 0`: nothing is kept and the routes answer an empty history. */
  get enabled(): boolean {
    return this.budgetBytes > 0;
  }

  /**
   * Starts making the preview of a version, to be given to {@link record}: from its JPEG
   * (libvips shrinks on load, in libuv's pool) or from pixels already decoded (the pyramid's
   * home levels, so the image is decoded once per publish).
   */
  preview(image: Buffer | RawPixels): Promise<Buffer> | undefined {
    if (!this.enabled) {
      return undefined;
    }
    const input = Buffer.isBuffer(image) ? sharp(image) : sharp(image.data, { raw: image.raw });
    // Grey pixels stay a one-channel JPEG (libvips would write them as sRGB: three times the samples).
    const grey = !Buffer.isBuffer(image) && image.raw.channels === 1;
    return (grey ? input.toColourspace('b-w') : input).resize(PREVIEW_SIZE, PREVIEW_SIZE, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 80 }).toBuffer();
  }

  /** Keeps `preview` as the frame of `frame.version`, then thins the history to its budget. */
  record(preview: Buffer, frame: HistoryFrame): Promise<void> {
    return this.queue.run(async () => {
      await this.open();
      const before = this.frames;
      this.frames = this.frames.filter((f) => f.version !== frame.version);
      this.frames.push({ ...frame, bytes: preview.length });
      this.frames.sort((a, b) => a.version - b.version);
      try {
        // Room is made before the file is written, so the disk never holds more than the budget.
        await this.thin();
        await this.storage.writeAtomic(this.previewPath(frame.version), preview);
      } catch (err) {
        // No frame is listed without its preview (a full disk).
        this.frames = before.filter((f) => this.frames.includes(f));
        throw err;
      }
      await this.writeIndex();
    });
  }

  /** The frames kept, oldest first. */
  async list(): Promise<HistoryFrame[]> {
    if (!this.enabled) {
      return [];
    }
    await this.queue.run(() => this.open());
    return this.frames.map(({ version, at, stackSize, exposure, object }) => ({ version, at, stackSize, exposure, object }));
  }

  /** The preview file of a version still kept; undefined once thinned away (or never kept). */
  async previewFile(version: number): Promise<string | undefined> {
    if (!this.enabled) {
      return undefined;
    }
    await this.queue.run(() => this.open());
    return this.frames.some((f) => f.version === version) ? this.previewPath(version) : undefined;
  }

  /** Bytes on disk now: previews, index and cached timelapses. */
  get diskBytes(): number {
    return this.frames.reduce((sum, f) => sum + f.bytes, 0) + this.indexBytes + this.timelapseBytes();
  }

  /**
   * The path of the animated WebP of the frames from `from` to `to` (all by default) at
   * `width` px, made once per frame range and width and kept while its frames are (and the
   * budget allows). Throws {@link NoFramesError} when no frame is in the range.
   */
  async timelapse(request: TimelapseRequest): Promise<string> {
    if (!this.enabled) {
      throw new NoFramesError('the history is off (HISTORY_BUDGET_MB=0)');
    }
    const { name, previews } = await this.queue.run(async () => {
      await this.open();
      const frames = this.frames.filter((f) => (request.from === undefined || f.version >= request.from) && (request.to === undefined || f.version <= request.to));
      if (frames.length === 0) {
        throw new NoFramesError(
          this.frames.length === 0 ? 'the history holds no frames yet' : `no frame between versions ${request.from ?? 'first'} and ${request.to ?? 'latest'}`,
        );
      }
      const name = `${frames[0].version}-${frames.at(-1)?.version ?? frames[0].version}-${request.width}.webp`;
      if (this.timelapses.has(name)) {
        return { name, previews: undefined };
      }
      // Read now: a thinning after this point may remove the files.
      return { name, previews: await Promise.all(frames.map((f) => readFile(this.previewPath(f.version)))) };
    });
    const path = join(this.folder, TIMELAPSE_FOLDER, name);
    if (previews === undefined) {
      return path;
    }
    let pending = this.building.get(name);
    if (!pending) {
      pending = this.builds.run(() => this.buildTimelapse(name, previews, request.width)).finally(() => this.building.delete(name));
      this.building.set(name, pending);
    }
    return pending;
  }

  private async buildTimelapse(name: string, previews: Buffer[], width: number): Promise<string> {
    const webp = await animatedWebp(previews, width);
    const match = TIMELAPSE_NAME.exec(name);
    const entry = { from: Number(match?.[1]), to: Number(match?.[2]), bytes: webp.length };
    const path = join(this.folder, TIMELAPSE_FOLDER, name);
    return this.queue.run(async () => {
      await mkdir(join(this.folder, TIMELAPSE_FOLDER), { recursive: true });
      await this.storage.writeAtomic(path, webp);
      this.timelapses.set(name, entry);
      await this.thin();
      return path;
    });
  }

  private previewPath(version: number): string {
    return join(this.folder, `${version}.jpg`);
  }

  private timelapseBytes(): number {
    let sum = 0;
    for (const t of this.timelapses.values()) {
      sum += t.bytes;
    }
    return sum;
  }

  /** Reads the index once; drops entries whose preview is gone and files no entry names (a crash between the two writes). */
  private open(): Promise<void> {
    this.opened ??= this.load().catch((err: unknown) => {
      this.opened = undefined;
      throw err;
    });
    return this.opened;
  }

  private async load(): Promise<void> {
    await mkdir(join(this.folder, TIMELAPSE_FOLDER), { recursive: true });
    await this.storage.removeStaleTemps(this.folder);
    await this.storage.removeStaleTemps(join(this.folder, TIMELAPSE_FOLDER));
    let listed: StoredFrame[] = [];
    try {
      const parsed: unknown = JSON.parse(await readFile(join(this.folder, INDEX_FILE), 'utf8'));
      listed = Array.isArray(parsed) ? parsed.filter(isStoredFrame) : [];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn(`the history index could not be read (${(err as Error).message}): starting from the previews on disk`);
      }
    }
    const names = new Set(await readdir(this.folder));
    const recovered = await this.recoverLatest(listed, names);
    if (recovered !== undefined) {
      names.add(`${recovered}.jpg`);
    }
    this.frames = listed.filter((f) => names.has(`${f.version}.jpg`)).sort((a, b) => a.version - b.version);
    const kept = new Set(this.frames.map((f) => `${f.version}.jpg`));
    const orphans = [...names].filter((n) => /^[1-9]\d*\.jpg$/.test(n) && !kept.has(n));
    await Promise.all(orphans.map((n) => rm(join(this.folder, n), { force: true })));
    for (const name of await readdir(join(this.folder, TIMELAPSE_FOLDER))) {
      const match = TIMELAPSE_NAME.exec(name);
      if (match) {
        const { size } = await stat(join(this.folder, TIMELAPSE_FOLDER, name));
        this.timelapses.set(name, { from: Number(match[1]), to: Number(match[2]), bytes: size });
      }
    }
    this.indexBytes = Buffer.byteLength(this.indexJson());
    if (recovered !== undefined) {
      await this.thin(); // the preview made again may be a little larger
    }
    if (this.frames.length > 0) {
      this.logger.log(`history: ${this.frames.length} frames, ${(this.diskBytes / 1024 / 1024).toFixed(1)} MB of ${(this.budgetBytes / 1024 / 1024).toFixed(1)} MB`);
    }
  }

  /**
   * A crash between a publish's thinning (index written, the frames it dropped gone, maybe the
   * latest) and its preview: when the served image is that last listed version, its preview is
   * made again from it, so the history still ends with the latest frame. Its version when made.
   */
  private async recoverLatest(listed: StoredFrame[], names: Set<string>): Promise<number | undefined> {
    const last = listed.reduce<StoredFrame | undefined>((a, f) => (a === undefined || f.version > a.version ? f : a), undefined);
    if (!last || names.has(`${last.version}.jpg`)) {
      return undefined;
    }
    try {
      const data = JSON.parse(await readFile(join(this.webFolder, DATA_FILE), 'utf8')) as { VERSION?: unknown };
      if (data.VERSION !== last.version) {
        return undefined;
      }
      const preview = await this.preview(await readFile(join(this.webFolder, IMAGE_FILE)));
      if (!preview) {
        return undefined;
      }
      await this.storage.writeAtomic(this.previewPath(last.version), preview);
      last.bytes = preview.length;
      this.logger.warn(`history: the preview of version ${last.version} was cut by a stop; made again from the image served`);
      return last.version;
    } catch (err) {
      this.logger.warn(`history: the preview of version ${last.version} could not be made again (${(err as Error).message})`);
      return undefined;
    }
  }

  /**
   * Brings the history under its budget: cached timelapses first (oldest first), then the
   * frame whose neighbours are closest (the densest spot), never the first or the latest.
   */
  private async thin(): Promise<void> {
    const removed: number[] = [];
    const over = (): boolean => this.diskBytes + 256 > this.budgetBytes; // 256: the index grows by about one entry
    for (const [name] of this.timelapses) {
      if (!over()) {
        break;
      }
      await this.dropTimelapse(name);
    }
    while (over() && this.frames.length > 2) {
      let pick = 1;
      for (let i = 2; i < this.frames.length - 1; i++) {
        if (this.frames[i + 1].version - this.frames[i - 1].version < this.frames[pick + 1].version - this.frames[pick - 1].version) {
          pick = i;
        }
      }
      removed.push(this.frames[pick].version);
      this.frames.splice(pick, 1);
      this.indexBytes = Buffer.byteLength(this.indexJson());
    }
    if (removed.length === 0) {
      return;
    }
    // The index is written before the files go: a crash leaves orphans, cleaned at the next start.
    await this.writeIndex();
    await Promise.all(removed.map((v) => rm(this.previewPath(v), { force: true })));
    for (const [name, t] of this.timelapses) {
      if (removed.some((v) => v >= t.from && v <= t.to)) {
        await this.dropTimelapse(name);
      }
    }
  }

  private async dropTimelapse(name: string): Promise<void> {
    this.timelapses.delete(name);
    await rm(join(this.folder, TIMELAPSE_FOLDER, name), { force: true });
  }

  private indexJson(): string {
    return JSON.stringify(this.frames);
  }

  private async writeIndex(): Promise<void> {
    const json = this.indexJson();
    await this.storage.writeAtomic(join(this.folder, INDEX_FILE), json);
    this.indexBytes = Buffer.byteLength(json);
  }
}

function isStoredFrame(value: unknown): value is StoredFrame {
  const f = value as Partial<StoredFrame> | null;
  return (
    typeof f === 'object' &&
    f !== null &&
    Number.isSafeInteger(f.version) &&
    (f.version ?? 0) > 0 &&
    typeof f.at === 'string' &&
    typeof f.stackSize === 'number' &&
    typeof f.exposure === 'number' &&
    (f.object === null || typeof f.object === 'string') &&
    typeof f.bytes === 'number'
  );
}

/**
 * The previews as one animated WebP, `width` px wide, at the latest frame's aspect ratio
 * (frames of another shape are cropped to it), looping, {@link TIMELAPSE_FRAME_MS} per frame.
 */
export async function animatedWebp(previews: Buffer[], width: number): Promise<Buffer> {
  const last = await sharp(previews.at(-1)).metadata();
  const height = Math.max(1, Math.round((width * (last.height ?? width)) / (last.width ?? width)));
  // Each frame resized first (small JPEGs), so the joined image is decoded a strip at a time.
  const frames = await Promise.all(previews.map((p) => sharp(p).resize(width, height, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer()));
  return sharp(frames, { join: { animated: true } })
    .webp({ quality: 70, effort: 2, loop: 0, delay: frames.map(() => TIMELAPSE_FRAME_MS) })
    .toBuffer();
}
