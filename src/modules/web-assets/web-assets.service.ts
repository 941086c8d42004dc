import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { formatExposure } from './exposure-format.js';
import { FileStorage } from './file-storage.repository.js';
import { renderFavicon, renderWaitingImage } from './generated-images.js';

export const IMAGE_FILE = 'web_image.jpg';
export const DATA_FILE = 'data.json';

/** Session metrics, absolute values (not increments). */
export interface SessionMetrics {
  /** Number of frames in the stack now; integer ≥ 0. */
  stackSize?: number;
  /** Total exposure of the stack now, in seconds; ≥ 0. */
  exposureSeconds?: number;
}

/** A file kept in memory with its validator, so the hot files are served without disk I/O. */
export interface ServedFile {
  body: Buffer;
  etag: string;
  lastModified: Date;
  contentType: string;
}

/** The metrics and image state of the session, as /status reports them. */
export interface SessionState {
  stackSize: number;
  exposureSeconds: number;
  /** Images published since the process started (the waiting image excluded). */
  imagesPublished: number;
  lastImageAt: Date | undefined;
}

/** Thrown for metrics that are not valid numbers; nothing is written. */
export class InvalidMetricsError extends Error {
  override name = 'InvalidMetricsError';
}

const VIEWER_SOURCE = fileURLToPath(new URL('./viewer/', import.meta.url));

/**
 * Publishes the viewer's files into the web folder and owns the two files that change
 * during a session, web_image.jpg and data.json. Every write is atomic, and writes are
 * serialized so the image and data.json on disk always belong to the same publish.
 */
@Injectable()
export class WebAssetsService {
  private readonly logger = new Logger(WebAssetsService.name);
  /** Distinguishes ETags across restarts, since the sequence starts again at 1. */
  private readonly etagPrefix = randomBytes(4).toString('hex');
  private sequence = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private image: ServedFile | undefined;
  private data: ServedFile | undefined;
  private readonly state: SessionState = { stackSize: 0, exposureSeconds: 0, imagesPublished: 0, lastImageAt: undefined };

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly storage: FileStorage,
  ) {}

  get webFolder(): string {
    return this.options.webFolder;
  }

  get session(): Readonly<SessionState> {
    return this.state;
  }

  /** Real path of a file inside the web folder (symlinks resolved); throws when missing. */
  realpathIn(relative: string): Promise<string> {
    return this.storage.realpath(join(this.options.webFolder, relative));
  }

  currentImage(): ServedFile | undefined {
    return this.image;
  }

  currentData(): ServedFile | undefined {
    return this.data;
  }

  /**
   * Runs `task` after every earlier one has finished. Publishes, metric updates and the
   * static publication all go through here, so none interleaves with another.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * START: writes index.html and the viewer sources, favicon.ico, icons/*.png and
   * openseadragon.min.js, then the waiting image and data.json unless this session
   * already has an image (a START after a STOP keeps what was published meanwhile).
   */
  publishStatic(): Promise<void> {
    return this.exclusive(async () => {
      const web = this.options.webFolder;
      await this.storage.ensureFolder(this.options.workFolder);
      await this.storage.ensureFolder(join(web, 'icons'));
      for (const name of await readdir(VIEWER_SOURCE)) {
        await this.storage.writeAtomic(join(web, name), await this.storage.readFile(join(VIEWER_SOURCE, name)));
      }
      const osd = openSeadragonBuild();
      await this.storage.writeAtomic(join(web, 'openseadragon.min.js'), await this.storage.readFile(join(osd, 'openseadragon.min.js')));
      const icons = (await readdir(join(osd, 'images'))).filter((f) => f.endsWith('.png'));
      for (const icon of icons) {
        await this.storage.writeAtomic(join(web, 'icons', icon), await this.storage.readFile(join(osd, 'images', icon)));
      }
      await this.storage.writeAtomic(join(web, 'favicon.ico'), await renderFavicon());
      if (this.state.imagesPublished === 0) {
        await this.writeImageFile(await renderWaitingImage(), undefined);
      } else {
        // The files may have been removed while stopped; put the session's back.
        await this.storage.writeAtomic(join(web, IMAGE_FILE), this.image!.body);
      }
      await this.writeDataFile();
      this.logger.log(`web folder ready: ${web}`);
    });
  }

  /** Writes a validated JPEG and the metrics, image first. Call inside {@link exclusive}. */
  async writeImage(jpeg: Buffer, metrics: SessionMetrics = {}): Promise<void> {
    const next = checkedMetrics(this.state, metrics);
    await this.writeImageFile(jpeg, new Date());
    Object.assign(this.state, next);
    this.state.imagesPublished++;
    await this.writeDataFile();
  }

  /** Writes data.json with new metrics. Call inside {@link exclusive}. */
  async writeMetrics(metrics: SessionMetrics): Promise<void> {
    Object.assign(this.state, checkedMetrics(this.state, metrics));
    await this.writeDataFile();
  }

  /** Takes in a web_image.jpg that a caller wrote itself. Call inside {@link exclusive}. */
  async reloadImageFromDisk(): Promise<void> {
    const path = join(this.options.webFolder, IMAGE_FILE);
    const body = await this.storage.readFile(path);
    const { mtime } = await this.storage.stat(path);
    this.image = this.served(body, 'image/jpeg', mtime);
    this.state.imagesPublished++;
    this.state.lastImageAt = new Date();
    await this.writeDataFile();
  }

  private async writeImageFile(jpeg: Buffer, at: Date | undefined): Promise<void> {
    await this.storage.writeAtomic(join(this.options.webFolder, IMAGE_FILE), jpeg);
    this.image = this.served(jpeg, 'image/jpeg', at ?? new Date());
    if (at) {
      this.state.lastImageAt = at;
    }
  }

  private async writeDataFile(): Promise<void> {
    const json = JSON.stringify({
      STACK_SIZE: this.state.stackSize,
      EXPO: formatExposure(this.state.exposureSeconds),
      UPDATED: this.state.lastImageAt?.toISOString() ?? null,
    });
    await this.storage.writeAtomic(join(this.options.webFolder, DATA_FILE), json);
    this.data = this.served(Buffer.from(json), 'application/json; charset=utf-8', new Date());
  }

  private served(body: Buffer, contentType: string, lastModified: Date): ServedFile {
    this.sequence++;
    return { body, contentType, lastModified, etag: `"${this.etagPrefix}-${this.sequence}-${body.length}"` };
  }
}

function checkedMetrics(current: SessionState, metrics: SessionMetrics): Pick<SessionState, 'stackSize' | 'exposureSeconds'> {
  const { stackSize = current.stackSize, exposureSeconds = current.exposureSeconds } = metrics;
  if (!Number.isSafeInteger(stackSize) || stackSize < 0) {
    throw new InvalidMetricsError(`stackSize must be an integer ≥ 0, got ${String(stackSize)}`);
  }
  if (!Number.isFinite(exposureSeconds) || exposureSeconds < 0) {
    throw new InvalidMetricsError(`exposureSeconds must be a number ≥ 0, got ${String(exposureSeconds)}`);
  }
  return { stackSize, exposureSeconds };
}

/** Folder of OpenSeadragon's build in the installed npm package (never a copy in this repo). */
function openSeadragonBuild(): string {
  const pkg = createRequire(import.meta.url).resolve('openseadragon/package.json');
  return join(dirname(pkg), 'build', 'openseadragon');
}
