import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SerialQueue } from '../../common/serial-queue.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { formatExposure } from './exposure-format.js';
import { FileStorage } from './file-storage.repository.js';
import { appIcons, favicon, waitingImage } from './generated-images.js';

export const IMAGE_FILE = 'web_image.jpg';
export const DATA_FILE = 'data.json';

/** Session metrics, absolute values (not increments). */
export interface SessionMetrics {
  /** Number of frames in the stack now; integer ≥ 0. */
  stackSize?: number;
  /** Total exposure of the stack now, in seconds; ≥ 0. */
  exposureSeconds?: number;
}

/**
 * A file kept in memory with its validator, so the hot files are served without disk I/O.
 * The response headers are built once per version, not per request.
 */
export interface ServedFile {
  body: Buffer;
  etag: string;
  /** Flat `[name, value, ...]` lists, the form `writeHead` sends without re-validating. */
  headers: { ok: string[]; notModified: string[] };
}

const JSON_TYPE = 'application/json; charset=utf-8';
const JPEG_TYPE = 'image/jpeg';

/** The metrics and image state of the session, as /status reports them. */
export interface SessionState {
  stackSize: number;
  exposureSeconds: number;
  /** Images published since the process started (the waiting image excluded). */
  imagesPublished: number;
  lastImageAt: Date | undefined;
}

/** The work or web folder cannot be created or written (permissions, a file in the way). */
export class WebFolderError extends Error {
  override name = 'WebFolderError';

  constructor(folder: string, cause: Error) {
    super(`Cannot use the folder ${folder}: ${cause.message}`, { cause });
  }
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
  private readonly queue = new SerialQueue();
  /** web_image.jpg and data.json as last written, by file name. */
  private readonly hot = new Map<string, ServedFile>();
  /** Web-folder paths written by START (viewer, icons, library): the only files served besides the image and data.json. */
  private readonly published = new Set<string>([IMAGE_FILE, DATA_FILE]);
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

  /** Whether a web-folder path (`icons/home_rest.png`) is one of the files the service serves. */
  isServed(relative: string): boolean {
    return this.published.has(relative);
  }

  /** Real path of a file inside the web folder (symlinks resolved); throws when missing. */
  realpathIn(relative: string): Promise<string> {
    return this.storage.realpath(join(this.options.webFolder, relative));
  }

  /** web_image.jpg or data.json as last written, for a web-folder path; undefined for any other. */
  inMemory(relative: string): ServedFile | undefined {
    return this.hot.get(relative);
  }

  /**
   * Runs `task` after every earlier one has finished. Publishes, metric updates and the
   * static publication all go through here, so none interleaves with another.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.queue.run(task);
  }

  /** Resolves once every write queued so far is done (shutdown). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  /**
   * START: writes index.html and the viewer sources, favicon.ico, icons/*.png and
   * openseadragon.min.js, then the waiting image and data.json unless this session
   * already has an image (a START after a STOP keeps what was published meanwhile).
   */
  publishStatic(): Promise<void> {
    return this.exclusive(async () => {
      const web = this.options.webFolder;
      try {
        await this.storage.ensureFolder(this.options.workFolder);
        await this.storage.ensureFolder(join(web, 'icons'));
      } catch (err) {
        throw new WebFolderError(web, err as Error);
      }
      await this.storage.removeStaleTemps(web);
      const copy = async (relative: string, source: string): Promise<void> => {
        await this.storage.writeAtomic(join(web, relative), await this.storage.readFile(source));
        this.published.add(relative);
      };
      for (const name of await readdir(VIEWER_SOURCE)) {
        await copy(name, join(VIEWER_SOURCE, name));
      }
      const osd = openSeadragonBuild();
      await copy('openseadragon.min.js', join(osd, 'openseadragon.min.js'));
      for (const icon of (await readdir(join(osd, 'images'))).filter((f) => f.endsWith('.png'))) {
        await copy(`icons/${icon}`, join(osd, 'images', icon));
      }
      await this.storage.writeAtomic(join(web, 'favicon.ico'), await favicon());
      this.published.add('favicon.ico');
      for (const [relative, render] of appIcons) {
        await this.storage.writeAtomic(join(web, relative), await render());
        this.published.add(relative);
      }
      // The waiting image until the first publish; after a STOP, the session's image (the
      // files may have been removed while stopped).
      const current = this.hot.get(IMAGE_FILE);
      const image = current?.body ?? (await waitingImage());
      await this.storage.writeAtomic(join(web, IMAGE_FILE), image);
      if (!current) {
        this.hot.set(IMAGE_FILE, this.served(image, JPEG_TYPE, new Date()));
      }
      await this.writeDataFile(this.state);
      this.logger.log(`web folder ready: ${web}`);
    });
  }

  /**
   * Writes a validated JPEG and checked metrics ({@link assertMetrics}) together (both temp files first, then the
   * renames, image first). Call inside {@link exclusive}.
   */
  async writeImage(jpeg: Buffer, metrics: SessionMetrics = {}): Promise<void> {
    const at = new Date();
    const next: SessionState = {
      ...mergeMetrics(this.state, metrics),
      imagesPublished: this.state.imagesPublished + 1,
      lastImageAt: at,
    };
    const json = dataJson(next);
    const web = this.options.webFolder;
    await this.storage.writeAllAtomic([
      [join(web, IMAGE_FILE), jpeg],
      [join(web, DATA_FILE), json],
    ]);
    // Memory follows the disk only once both files are in place.
    Object.assign(this.state, next);
    this.hot.set(IMAGE_FILE, this.served(jpeg, JPEG_TYPE, at));
    this.hot.set(DATA_FILE, this.served(Buffer.from(json), JSON_TYPE, at));
  }

  /** Writes data.json with new, checked metrics. Call inside {@link exclusive}. */
  async writeMetrics(metrics: SessionMetrics): Promise<void> {
    await this.writeDataFile({ ...this.state, ...mergeMetrics(this.state, metrics) });
  }

  /** Takes in a web_image.jpg that a caller wrote itself. Call inside {@link exclusive}. */
  async reloadImageFromDisk(): Promise<void> {
    const path = join(this.options.webFolder, IMAGE_FILE);
    const body = await this.storage.readFile(path);
    const { mtime } = await this.storage.stat(path);
    this.hot.set(IMAGE_FILE, this.served(body, JPEG_TYPE, mtime));
    await this.writeDataFile({ ...this.state, imagesPublished: this.state.imagesPublished + 1, lastImageAt: new Date() });
  }

  /** Writes data.json for `next`, then makes it the session's state. */
  private async writeDataFile(next: SessionState): Promise<void> {
    const json = dataJson(next);
    await this.storage.writeAtomic(join(this.options.webFolder, DATA_FILE), json);
    Object.assign(this.state, next);
    this.hot.set(DATA_FILE, this.served(Buffer.from(json), JSON_TYPE, new Date()));
  }

  private served(body: Buffer, contentType: string, lastModified: Date): ServedFile {
    this.sequence++;
    const etag = `"${this.etagPrefix}-${this.sequence}-${body.length}"`;
    const notModified = ['Cache-Control', 'no-cache', 'ETag', etag, 'Last-Modified', lastModified.toUTCString()];
    return {
      body,
      etag,
      headers: { notModified, ok: [...notModified, 'Content-Type', contentType, 'Content-Length', String(body.length)] },
    };
  }
}

/** data.json as ALS writes it, plus the time of the last image. */
function dataJson(state: SessionState): string {
  return JSON.stringify({
    STACK_SIZE: state.stackSize,
    EXPO: formatExposure(state.exposureSeconds),
    UPDATED: state.lastImageAt?.toISOString() ?? null,
  });
}

function mergeMetrics(current: SessionState, metrics: SessionMetrics): Pick<SessionState, 'stackSize' | 'exposureSeconds'> {
  return { stackSize: metrics.stackSize ?? current.stackSize, exposureSeconds: metrics.exposureSeconds ?? current.exposureSeconds };
}

/** The one check of metrics given in code (the HTTP edge parses its query with a DTO first). */
export function assertMetrics({ stackSize, exposureSeconds }: SessionMetrics): void {
  if (stackSize !== undefined && (!Number.isSafeInteger(stackSize) || stackSize < 0)) {
    throw new InvalidMetricsError(`stackSize must be an integer ≥ 0, got ${String(stackSize)}`);
  }
  if (exposureSeconds !== undefined && (!Number.isFinite(exposureSeconds) || exposureSeconds < 0)) {
    throw new InvalidMetricsError(`exposureSeconds must be a number ≥ 0, got ${String(exposureSeconds)}`);
  }
}

/** Folder of OpenSeadragon's build in the installed npm package (never a copy in this repo). */
function openSeadragonBuild(): string {
  const pkg = createRequire(import.meta.url).resolve('openseadragon/package.json');
  return join(dirname(pkg), 'build', 'openseadragon');
}
