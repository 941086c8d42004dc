import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sha256 } from '../../common/digest.js';
import { objectName, OBJECT_NAME_RULE, type ImageDetails } from '../../common/image-details.js';
import { SerialQueue } from '../../common/serial-queue.js';
import { IMAGE_SERVER_OPTIONS, RESUME_MAX_AGE_MS, type ImageServerOptions } from '../../config/image-server-options.js';
import { formatExposure } from './exposure-format.js';
import { FileStorage, type StagedFile } from './file-storage.repository.js';
import { waitingImage } from './generated-images.js';
import { DZI_FILE, PyramidBuilder } from './pyramid.js';
import { isVersionName, VersionStore, VERSIONS_FOLDER } from './version-store.js';
import { ViewerFilesService } from './viewer-files.service.js';

export const IMAGE_FILE = 'web_image.jpg';
export const DATA_FILE = 'data.json';
/** The image of the publish before the last, kept so a kill between the two renames can be undone at START. */
const PREVIOUS_IMAGE_FILE = '.web_image.previous.jpg';
/** data.json keys this service writes; any other key is carried over as it is. */
const OWN_KEYS = new Set(['STACK_SIZE', 'EXPO', 'UPDATED', 'IMAGE_SHA256', 'VERSION', 'DEMO', 'OBJECT', 'TELESCOPE', 'CAMERA', 'FILTER', 'DATE_OBS']);
/** data.json's keys for the {@link ImageDetails}. */
const DETAIL_KEYS = { telescope: 'TELESCOPE', camera: 'CAMERA', filter: 'FILTER', dateObs: 'DATE_OBS' } as const;

/** Session metrics, absolute values (not increments). */
export interface SessionMetrics {
  /** Number of frames in the stack now; integer ≥ 0. */
  stackSize?: number;
  /** Total exposure of the stack now, in seconds; ≥ 0. */
  exposureSeconds?: number;
  /**
   * The target the image shows (`M 42`), 1 to 100 visible characters. With an image: that
   * image's (left out: none); in a metrics update: left out keeps the current one.
   */
  object?: string;
  /** What the image's header says (telescope, camera, filter, date); with an image only. */
  details?: ImageDetails;
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
  /** The target of the image shown (data.json `OBJECT`); null when none is known. */
  object: string | null;
  /** The image's header fields (data.json `TELESCOPE`, `CAMERA`, `FILTER`, `DATE_OBS`). */
  details: ImageDetails;
}

/** Why the web folder cannot be written: its disk is full, it is read-only, it is gone, or another error. */
export type StorageProblem = 'full' | 'read-only' | 'missing' | 'failed';

/** Less than this left on the web folder's disk after a failed write: the disk is full. */
const FULL_DISK_BYTES = 1024 * 1024;

/** libvips reports a failed write by its message only (no errno code). */
const LIBVIPS_STORAGE_ERRORS: [RegExp, string][] = [
  [/No space left on device/i, 'ENOSPC'],
  [/Disk quota exceeded/i, 'EDQUOT'],
  [/Read-only file system/i, 'EROFS'],
  [/Permission denied/i, 'EACCES'],
  [/No such file or directory/i, 'ENOENT'],
];

/** The errno code of a filesystem failure (Node's, or named in a libvips message); undefined for any other error. */
function storageCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) {
    return undefined;
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string') {
    return code;
  }
  return LIBVIPS_STORAGE_ERRORS.find(([pattern]) => pattern.test(err.message))?.[1];
}

/** A libvips failure as one line with its errno code (its message spans several lines). */
function withCode(err: Error, code: string): Error {
  if ((err as NodeJS.ErrnoException).code !== undefined) {
    return err;
  }
  const pattern = LIBVIPS_STORAGE_ERRORS.find(([, c]) => c === code)?.[0];
  const line = err.message.split('\n').find((l) => pattern?.test(l) === true) ?? err.message.split('\n')[0];
  return Object.assign(new Error(line.replace(/^system error:\s*/, ''), { cause: err }), { code });
}

function storageProblem(err: Error): StorageProblem {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'full';
    case 'EROFS':
    case 'EACCES':
    case 'EPERM':
      return 'read-only';
    case 'ENOENT':
      return 'missing';
    default:
      return 'failed';
  }
}

/** The work or web folder cannot be created or written (disk full, read-only, permissions, a file in the way). */
export class WebFolderError extends Error {
  override name = 'WebFolderError';
  readonly problem: StorageProblem;

  constructor(folder: string, cause: Error) {
    const problem = storageProblem(cause);
    const what: Record<StorageProblem, string> = {
      full: `The disk of the folder ${folder} is full`,
      'read-only': `The folder ${folder} is read-only or not writable`,
      missing: `The folder ${folder} is missing or cannot be created`,
      failed: `Cannot use the folder ${folder}`,
    };
    super(`${what[problem]} (${cause.message})`, { cause });
    this.problem = problem;
  }
}

/** Thrown for metrics that are not valid numbers; nothing is written. */
export class InvalidMetricsError extends Error {
  override name = 'InvalidMetricsError';
}

/** web_image.jpg written ahead of its turn by {@link WebAssetsService.stageImage}, with its digest. */
export interface StagedImage {
  file: StagedFile;
  digest: string;
}

/**
 * Prepares the web folder at START (the viewer's files through {@link ViewerFilesService})
 * and owns the two files that change during a session, web_image.jpg and data.json. Every
 * write is atomic, and writes are serialized so the image and data.json on disk always
 * belong to the same publish.
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
  private readonly state: SessionState = { stackSize: 0, exposureSeconds: 0, imagesPublished: 0, lastImageAt: undefined, version: null, object: null, details: {} };
  /** SHA-256 of web_image.jpg as last written: data.json names the image it belongs to. */
  private imageDigest = '';
  /** data.json keys of other features, read at the first START and written back as they were. */
  private carried: Record<string, unknown> = {};
  /** The last write's failure, until a write succeeds again. */
  private problem: StorageProblem | undefined;
  /** The web folder being made again after it was removed (see {@link madeAgain}). */
  private recreating: Promise<void> | undefined;
  /** How many times it was made again. */
  private recreations = 0;
  private markReady: () => void = () => undefined;
  /** Resolves once the first START has written the web folder (and read its version counter). */
  readonly ready = new Promise<void>((resolve) => (this.markReady = resolve));

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly storage: FileStorage,
    private readonly versions: VersionStore,
    private readonly pyramids: PyramidBuilder,
    private readonly viewerFiles: ViewerFilesService,
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

  /** The web folder's state for /status: a write failure, or viewer files gone from disk. */
  storageProblem(): StorageProblem | undefined {
    if (this.problem !== undefined) {
      return this.problem;
    }
    return this.storage.existsNow(join(this.options.webFolder, 'index.html')) ? undefined : 'missing';
  }

  /**
   * START: writes index.html and the viewer sources, favicon.ico, icons/*.png and
   * openseadragon.min.js, except those the user replaced ({@link ViewerFilesService}). At the first START of the process, an image and data.json left by
   * an earlier run are kept when `resume` allows ({@link resumable}); otherwise the waiting
   * image and zeros. A START after a STOP keeps what was published meanwhile.
   */
  publishStatic(): Promise<void> {
    return this.exclusive(async () => {
      const web = this.options.webFolder;
      try {
        await this.storage.ensureFolder(this.options.workFolder);
        await this.viewerFiles.publish();
        const removed = await this.storage.removeStaleTemps(web);
        if (removed.length > 0) {
          this.logger.log(`removed ${removed.length} temp file(s) an interrupted write left behind`);
        }
        const current = this.hot.get(IMAGE_FILE);
        if (current) {
          // After a STOP, the session's image (the files may have been removed while stopped).
          await this.storage.writeAtomic(join(web, IMAGE_FILE), current.body);
        } else {
          const resumed = await this.resumable();
          if (resumed) {
            Object.assign(this.state, resumed.state);
            this.setImage(resumed.image, resumed.state.lastImageAt ?? new Date());
          } else {
            const image = await waitingImage();
            await this.storage.writeAtomic(join(web, IMAGE_FILE), image);
            this.setImage(image, new Date());
          }
        }
        // The numbering carries on from the versions on disk, which stay (the newest few).
        await this.versions.open();
        await this.pyramids.prune();
        await this.writeDataFile(this.state);
      } catch (err) {
        throw err instanceof WebFolderError ? err : new WebFolderError(web, err as Error);
      }
      this.problem = undefined;
      this.logger.log(`web folder ready: ${web}`);
      this.markReady();
    });
  }

  /**
   * The session an earlier run left in the web folder, when `resume` allows and data.json
   * names the image beside it by its digest. A kill between the image's rename and
   * data.json's leaves the new image with the old data.json: the image kept aside before
   * the renames is the one data.json names, and it is put back. Anything else: undefined.
   */
  private async resumable(): Promise<{ image: Buffer; state: SessionState } | undefined> {
    const web = this.options.webFolder;
    let data: Record<string, unknown>;
    let raw: Buffer;
    try {
      raw = await this.storage.readFile(join(web, DATA_FILE));
    } catch {
      return undefined; // no data.json yet
    }
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        return this.imageWithoutData('is not a JSON object');
      }
      data = parsed as Record<string, unknown>;
    } catch {
      return this.imageWithoutData('cannot be read (not JSON)');
    }
    this.carried = carriedKeys(data, (dropped) =>
      this.logger.warn(`data.json's other keys are over ${CARRIED_MAX_BYTES} bytes: not carried over: ${dropped.join(', ')}`),
    );
    const updated = typeof data.UPDATED === 'string' ? Date.parse(data.UPDATED) : Number.NaN;
    const stackSize = data.STACK_SIZE;
    const exposureSeconds = typeof data.EXPO === 'string' ? parseExposure(data.EXPO) : undefined;
    const mode = this.options.resume;
    if (mode === 'never' || Number.isNaN(updated) || typeof data.IMAGE_SHA256 !== 'string') {
      return undefined; // not wanted, or the waiting image of a run that got no image
    }
    if (data.DEMO === true && !this.options.demo) {
      this.logger.log('the last session was the demo: starting with the waiting image');
      return undefined;
    }
    if (mode === 'auto' && Date.now() - updated >= RESUME_MAX_AGE_MS) {
      this.logger.log(`the last image (${data.UPDATED as string}) is over 12 hours old: starting with the waiting image (RESUME=always keeps it)`);
      return undefined;
    }
    if (typeof stackSize !== 'number' || !Number.isSafeInteger(stackSize) || stackSize < 0 || exposureSeconds === undefined) {
      this.logger.warn(`data.json holds no valid STACK_SIZE and EXPO: starting with the waiting image`);
      return undefined;
    }
    const image = await this.imageNamed(data.IMAGE_SHA256);
    if (!image) {
      this.logger.warn('web_image.jpg is not the image data.json names, and no kept image is: starting with the waiting image');
      return undefined;
    }
    const version = await this.versionOnDisk(data.VERSION);
    const details: ImageDetails = {};
    for (const [field, key] of Object.entries(DETAIL_KEYS) as [keyof ImageDetails, string][]) {
      if (typeof data[key] === 'string') {
        details[field] = data[key];
      }
    }
    this.logger.log(
      `resumed the session of ${data.UPDATED as string}: STACK_SIZE ${stackSize}, EXPO ${formatExposure(exposureSeconds)}, version ${version ?? 'none'}`,
    );
    return { image, state: { stackSize, exposureSeconds, imagesPublished: 0, lastImageAt: new Date(updated), version, object: objectName(data.OBJECT) ?? null, details } };
  }

  /**
   * A damaged data.json beside a JPEG: the image is kept (with zero metrics), rather than
   * replaced by the waiting image; `RESUME` and its 12 hours apply to the image's own time.
   */
  private async imageWithoutData(problem: string): Promise<{ image: Buffer; state: SessionState } | undefined> {
    const path = join(this.options.webFolder, IMAGE_FILE);
    const found = await Promise.all([this.storage.readFile(path), this.storage.stat(path)]).catch(() => undefined);
    const mode = this.options.resume;
    if (!found || mode === 'never' || !isJpeg(found[0]) || (mode === 'auto' && Date.now() - found[1].mtimeMs >= RESUME_MAX_AGE_MS)) {
      this.logger.warn(`data.json ${problem}: starting with the waiting image`);
      return undefined;
    }
    const [image, { mtime }] = found;
    this.logger.warn(`data.json ${problem}: keeping web_image.jpg (${mtime.toISOString()}), its stack size and exposure unknown (0)`);
    return { image, state: { stackSize: 0, exposureSeconds: 0, imagesPublished: 0, lastImageAt: mtime, version: null, object: null, details: {} } };
  }

  /** data.json's VERSION when its pyramid is still on disk; else null (viewers get web_image.jpg). */
  private async versionOnDisk(value: unknown): Promise<number | null> {
    if (typeof value !== 'number' || !isVersionName(String(value))) {
      return null;
    }
    const dzi = join(this.options.webFolder, VERSIONS_FOLDER, String(value), DZI_FILE);
    return (await this.storage.stat(dzi).then(() => true, () => false)) ? value : null;
  }

  /** web_image.jpg when its digest is `digest`; else the image kept aside, put back in its place. */
  private async imageNamed(digest: string): Promise<Buffer | undefined> {
    const web = this.options.webFolder;
    const read = (name: string): Promise<Buffer | undefined> => this.storage.readFile(join(web, name)).catch(() => undefined);
    const image = await read(IMAGE_FILE);
    if (image && sha256(image) === digest) {
      return image;
    }
    const previous = await read(PREVIOUS_IMAGE_FILE);
    if (previous && sha256(previous) === digest) {
      await this.storage.keepAside(join(web, PREVIOUS_IMAGE_FILE), join(web, IMAGE_FILE));
      this.logger.warn('the last publish was cut between its two files: back to the one before, whose image and data.json are complete');
      return previous;
    }
    return undefined;
  }

  /**
   * Runs a write of the web folder (also outside {@link exclusive}: a version's pyramid). A
   * folder removed meanwhile is recreated with the viewer's files and the write tried once
   * more (unless `again` is false: a write that cannot be made twice); a storage failure is a {@link WebFolderError} (disk full, read-only...) logged
   * once per kind until a write succeeds again. Other errors (a damaged image) pass as they are.
   */
  async written<T>(write: () => Promise<T>, { again = true }: { again?: boolean } = {}): Promise<T> {
    const web = this.options.webFolder;
    const recreations = this.recreations;
    let result: T;
    try {
      try {
        result = await write();
      } catch (err) {
        if (storageCode(err) !== 'ENOENT' || !again || !(await this.madeAgain(recreations))) {
          throw err;
        }
        result = await write();
      }
    } catch (err) {
      const code = storageCode(err) ?? (await this.diskFull(err));
      if (code === undefined) {
        throw err;
      }
      const failure = new WebFolderError(web, withCode(err as Error, code));
      if (failure.problem !== this.problem) {
        this.logger.error(`${failure.message}; the previous image is still served`);
      } else {
        this.logger.debug(failure.message);
      }
      this.problem = failure.problem;
      throw failure;
    }
    if (this.problem !== undefined) {
      this.logger.log(`the web folder ${web} is writable again`);
      this.problem = undefined;
    }
    return result;
  }

  /**
   * After a write failed with ENOENT: true once the web folder is there again, made again
   * here with the viewer's files when it is missing (one making for all the writes that
   * found it gone: a publish runs several side by side), or by another write since this
   * one began (`recreations` as it was then); false when it was there all along.
   */
  private async madeAgain(recreations: number): Promise<boolean> {
    const there = this.recreating === undefined && (await this.storage.stat(this.options.webFolder).then(() => true, () => false));
    // A making begun during the stat is waited for like one this write begins.
    if (there && this.recreating === undefined) {
      return this.recreations !== recreations;
    }
    this.recreating ??= (async () => {
      // Counted as it begins: a write that fails before it ends is tried again after it.
      this.recreations++;
      this.logger.warn(`the web folder ${this.options.webFolder} was removed: creating it again with the viewer's files`);
      try {
        await this.viewerFiles.publish();
      } finally {
        this.recreating = undefined;
      }
    })();
    await this.recreating;
    return true;
  }

  /**
   * libvips does not always name the errno of a failed write (a tile writer's message can
   * be its own): a failure with less than {@link FULL_DISK_BYTES} left is the full disk's.
   */
  private async diskFull(err: unknown): Promise<string | undefined> {
    if (!(err instanceof Error)) {
      return undefined;
    }
    const free = await this.storage.freeBytes(this.options.webFolder).catch(() => Infinity);
    return free < FULL_DISK_BYTES ? 'ENOSPC' : undefined;
  }

  /**
   * Writes `jpeg` as the next web_image.jpg ahead of its turn (durably, under a temp name the
   * routes never serve), while its pyramid is cut: the turn itself only renames it. Give it to
   * {@link writeImage}, or discard its file.
   */
  async stageImage(jpeg: Buffer): Promise<StagedImage> {
    const digest = sha256(jpeg);
    const file = await this.written(() => this.storage.stage(join(this.options.webFolder, IMAGE_FILE), jpeg));
    return { file, digest };
  }

  /**
   * Writes a validated JPEG and checked metrics ({@link assertMetrics}) together (both temp
   * files first, then the renames, image first), as `version` (its pyramid already in
   * place). Call inside {@link exclusive}.
   */
  async writeImage(jpeg: Buffer, metrics: SessionMetrics, version: number, staged?: StagedImage): Promise<void> {
    const at = new Date();
    const next: SessionState = {
      ...mergeMetrics(this.state, metrics),
      imagesPublished: this.state.imagesPublished + 1,
      lastImageAt: at,
      version,
      object: metrics.object ?? null,
      details: metrics.details ?? {},
    };
    const digest = staged?.digest ?? sha256(jpeg);
    const json = this.dataJson(next, digest);
    const web = this.options.webFolder;
    await this.written(async () => {
      // data.json is renamed last and names its image: START can tell a cut publish.
      await this.storage.keepAside(join(web, IMAGE_FILE), join(web, PREVIOUS_IMAGE_FILE));
      await this.storage.writeAllAtomic([
        // The staged file once; written again if a first try failed (the web folder removed meanwhile).
        [join(web, IMAGE_FILE), staged?.file.available ? staged.file : jpeg],
        [join(web, DATA_FILE), json],
      ]);
    });
    // Memory follows the disk only once both files are in place.
    Object.assign(this.state, next);
    this.setImage(jpeg, at, digest);
    this.hot.set(DATA_FILE, this.served(Buffer.from(json), JSON_TYPE, at));
  }

  /** Writes data.json with new, checked metrics. Call inside {@link exclusive}. */
  async writeMetrics(metrics: SessionMetrics): Promise<void> {
    await this.writeDataFile({ ...this.state, ...mergeMetrics(this.state, metrics), object: metrics.object ?? this.state.object });
  }

  /** Writes data.json for `next`, then makes it the session's state. */
  private async writeDataFile(next: SessionState): Promise<void> {
    const json = this.dataJson(next, this.imageDigest);
    await this.written(() => this.storage.writeAtomic(join(this.options.webFolder, DATA_FILE), json));
    Object.assign(this.state, next);
    this.hot.set(DATA_FILE, this.served(Buffer.from(json), JSON_TYPE, new Date()));
  }

  private setImage(body: Buffer, lastModified: Date, digest = sha256(body)): void {
    this.imageDigest = digest;
    this.hot.set(IMAGE_FILE, this.served(body, JPEG_TYPE, lastModified));
  }

  /** data.json as ALS writes it, plus the time and version of the last image, the digest of the image it goes with, and other features' keys. */
  private dataJson(state: SessionState, imageDigest: string): string {
    return JSON.stringify({
      ...this.carried,
      STACK_SIZE: state.stackSize,
      EXPO: formatExposure(state.exposureSeconds),
      UPDATED: state.lastImageAt?.toISOString() ?? null,
      IMAGE_SHA256: imageDigest,
      VERSION: state.version,
      ...(this.options.demo ? { DEMO: true } : {}),
      OBJECT: state.object,
      ...Object.fromEntries(Object.entries(DETAIL_KEYS).flatMap(([field, key]) => {
        const value = state.details[field as keyof ImageDetails];
        return value === undefined ? [] : [[key, value]];
      })),
    });
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

/** Other features' data.json keys are carried over up to this size in all (JSON), never more. */
const CARRIED_MAX_BYTES = 16 * 1024;

/** data.json's keys that are not this service's, within {@link CARRIED_MAX_BYTES}; `onDropped` names the rest. */
function carriedKeys(data: Record<string, unknown>, onDropped: (keys: string[]) => void): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  const dropped: string[] = [];
  let bytes = 2;
  for (const [key, value] of Object.entries(data)) {
    if (OWN_KEYS.has(key)) {
      continue;
    }
    const size = Buffer.byteLength(JSON.stringify({ [key]: value }));
    if (bytes + size > CARRIED_MAX_BYTES) {
      dropped.push(key);
      continue;
    }
    bytes += size;
    kept[key] = value;
  }
  if (dropped.length > 0) {
    onDropped(dropped);
  }
  return kept;
}

/** A JPEG starts with SOI and a marker. */
function isJpeg(data: Buffer): boolean {
  return data.length > 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff;
}

/** EXPO back to seconds ("26:03:04" -> 93784), or undefined when it is not H:MM:SS. */
function parseExposure(expo: string): number | undefined {
  const parts = /^(\d+):([0-5]\d):([0-5]\d)$/.exec(expo);
  return parts ? Number(parts[1]) * 3600 + Number(parts[2]) * 60 + Number(parts[3]) : undefined;
}

function mergeMetrics(current: SessionState, metrics: SessionMetrics): Pick<SessionState, 'stackSize' | 'exposureSeconds'> {
  return { stackSize: metrics.stackSize ?? current.stackSize, exposureSeconds: metrics.exposureSeconds ?? current.exposureSeconds };
}

/** The one check of metrics given in code (the HTTP edge parses its query with a DTO first). */
export function assertMetrics({ stackSize, exposureSeconds, object }: SessionMetrics): void {
  if (object !== undefined && objectName(object) !== object) {
    throw new InvalidMetricsError(`object must be ${OBJECT_NAME_RULE}, got ${JSON.stringify(object)}`);
  }
  if (stackSize !== undefined && (!Number.isSafeInteger(stackSize) || stackSize < 0)) {
    throw new InvalidMetricsError(`stackSize must be an integer ≥ 0, got ${String(stackSize)}`);
  }
  if (exposureSeconds !== undefined && (!Number.isFinite(exposureSeconds) || exposureSeconds < 0)) {
    throw new InvalidMetricsError(`exposureSeconds must be a number ≥ 0, got ${String(exposureSeconds)}`);
  }
}
