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
import { compressAsset, compressibleType, type CompressedAsset } from './precompressed.js';
import { PyramidBuilder } from './pyramid.js';
import { VersionStore } from './version-store.js';

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
  /** Version of the image on disk (its pyramid is under `v/<version>/`); null for the waiting image. */
  version: number | null;
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
  private readonly state: SessionState = { stackSize: 0, exposureSeconds: 0, imagesPublished: 0, lastImageAt: undefined, version: null };
  /** The viewer's text files with their brotli and gzip forms, made at START. */
  private readonly compressed = new Map<string, CompressedAsset>();

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly storage: FileStorage,
    private readonly versions: VersionStore,
    private readonly pyramids: PyramidBuilder,
  ) {}

  /** A viewer text file (index.html, viewer.js, ...) with its compressed forms; undefined for others. */
  compressedAsset(relative: string): CompressedAsset | undefined {
    return this.compressed.get(relative);
  }

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
        const body = await this.storage.readFile(source);
        await this.storage.writeAtomic(join(web, relative), body);
        this.published.add(relative);
        const type = compressibleType(relative);
        if (type) {
          this.compressed.set(relative, await compressAsset(body, type));
        }
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
      // The numbering carries on from the versions on disk, which stay (the newest few).
      await this.versions.open();
      await this.pyramids.prune();
      await this.writeDataFile(this.state);
      this.logger.log(`web folder ready: ${web}`);
    });
  }

  /**
   * Writes a validated JPEG and checked metrics ({@link assertMetrics}) together (both temp
   * files first, then the renames, image first), as `version` (its pyramid already in
   * place). Call inside {@link exclusive}.
   */
  async writeImage(jpeg: Buffer, metrics: SessionMetrics, version: number): Promise<void> {
    const at = new Date();
    const next: SessionState = {
      ...mergeMetrics(this.state, metrics),
      imagesPublished: this.state.imagesPublished + 1,
      lastImageAt: at,
      version,
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

  /** web_image.jpg as it is on disk now (a caller wrote it itself), with its modification time. */
  async readImageFromDisk(): Promise<{ body: Buffer; mtime: Date }> {
    const path = join(this.options.webFolder, IMAGE_FILE);
    const [body, { mtime }] = await Promise.all([this.storage.readFile(path), this.storage.stat(path)]);
    return { body, mtime };
  }

  /**
   * Takes in a web_image.jpg that a caller wrote itself ({@link readImageFromDisk}) as
   * `version`, and writes data.json. Call inside {@link exclusive}.
   */
  async takeImageFromDisk(image: { body: Buffer; mtime: Date }, version: number): Promise<void> {
    this.hot.set(IMAGE_FILE, this.served(image.body, JPEG_TYPE, image.mtime));
    await this.writeDataFile({ ...this.state, imagesPublished: this.state.imagesPublished + 1, lastImageAt: new Date(), version });
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

/** data.json as ALS writes it, plus the time and version of the last image. */
function dataJson(state: SessionState): string {
  return JSON.stringify({
    STACK_SIZE: state.stackSize,
    EXPO: formatExposure(state.exposureSeconds),
    UPDATED: state.lastImageAt?.toISOString() ?? null,
    VERSION: state.version,
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
