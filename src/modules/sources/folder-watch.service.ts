import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { constants, type Stats } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ImageNotifier, type ImageMetrics } from '../image-notifier/image-notifier.service.js';
import { ImageRejectedError } from '../image-notifier/image-rejected.error.js';
import { IMAGE_FILE } from '../web-assets/web-assets.service.js';
import { FileWatcher, type FolderWatch } from './file-watcher.js';
import { ninaFileName } from './nina-name.js';
import { candidateOf, isWatchedImageName, pickNewest, type WatchCandidate } from './watch-scan.js';

/** What `WATCH_PATH` is right now. */
export type WatchTarget = 'folder' | 'file' | 'missing';

/**
 * Why a file was not published: `damaged` (the converter found it cut or corrupt once it
 * had settled), `refused` (not a format the service takes, larger than `maxImageBytes` or
 * `maxInputPixels`), `unreadable` (a symlink loop,
 * a FIFO, a folder named like an image, a permission denied), `failed` (the publish itself).
 */
export type WatchSkipKind = 'damaged' | 'refused' | 'unreadable' | 'failed';

/** The watch as `/status` reports it. */
export interface WatchStatus {
  path: string;
  target: WatchTarget;
  /** True while the folder is watched (OS change events, or polling on a network share). */
  changeEvents: boolean;
  /** True when the watch stats the folder every `pollIntervalMs` instead (network share, or no OS watch available). */
  polling: boolean;
  /**
   * True once the first listing of the watched folder is done: every file that arrives from
   * then on is news. Of the files found by that listing, only the newest is (see onReady).
   */
  ready: boolean;
  settleMs: number;
  pollIntervalMs: number;
  exposurePerImageSeconds: number;
  /** Images the watch published in this session (the STACK_SIZE it reports). */
  imagesPublished: number;
  /** Files and entries that could not be published, each logged (rate-limited). */
  filesSkipped: number;
  /** `filesSkipped` by kind. */
  skippedBy: Record<WatchSkipKind, number>;
  lastFile: string | null;
  lastSkipped: { file: string; kind: WatchSkipKind; reason: string; at: string } | null;
}

/**
 * A file that took the place of another under the same name (a new inode: an atomic
 * writer's rename) counts as complete once unchanged for a quarter of the settle time, at
 * most this long: a rename puts a whole file there at once.
 */
const RENAME_SETTLE_MAX_MS = 100;

/** At most one skip is logged as a warning this often; the others go to debug and are counted in the next warning. */
const SKIP_LOG_EVERY_MS = 10_000;

/** Signatures of this many files published or skipped are kept: the same file renamed is not news. */
const HANDLED_MEMORY = 64;

/** Watch-limit errors after which change events are replaced by polling. */
const NO_OS_WATCH = new Set(['ENOSPC', 'EMFILE', 'ENFILE', 'ENOSYS']);

/** A file of the watched folder as it was last seen. */
interface Tracked {
  seen: WatchCandidate;
  /** Arrival number of its last change (0: it was there before the watch began); only grows. */
  arrival: number;
  /** When (performance.now) its last change was seen. */
  changedAt: number;
  /** It is another file than the one seen before under its name (a rename into place). */
  replaced: boolean;
  /** Start of the current try window while it waits to be taken; undefined when it waits for nothing. */
  windowStart: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** The folder watch open now: the folder, what it is for, and its first listing. */
interface OpenWatch {
  key: string;
  folder: string;
  handle: FolderWatch | undefined;
  accepts: (name: string) => boolean;
  ready: boolean;
  /** Every name chokidar (or a listing) reported and not removed since. */
  reported: Set<string>;
  /** Names reported before the first listing was done: statted together, then `ready`. */
  initial: Set<string>;
}

/**
 * Follows `watchPath` (a file, or a folder where the latest image wins) and publishes each
 * image a stacker finishes writing there, in the order the changes arrive.
 *
 * Change events come from chokidar (`FileWatcher`; polling on network shares). Files are
 * ordered by arrival, never by their modification times, so a file dated in the future or
 * a clock stepped back never holds later ones up; of what a folder holds when the watch
 * begins, only the newest by modification time is taken. A file is read whole once
 * unchanged for `watchSettleMs` (a file renamed into place: a quarter of that, at most
 * 100 ms), and published if the converter takes it; a file that never settles (rewritten
 * in place faster than that) is tried at most once per settle time and published whenever
 * the read holds a complete image. Nothing that arrived before the last published file is
 * taken after it. Every skip (damaged once settled, another format, unreadable) is logged,
 * rate-limited, and counted; the file is tried again when it changes.
 */
@Injectable()
export class FolderWatchService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('FolderWatch');
  private running = false;
  private targetTimer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private recheckRequested = false;
  private lastTargetError: string | undefined;
  private target: WatchTarget | undefined;
  private watch: OpenWatch | undefined;
  /** Set once OS change events failed: every later watch polls. */
  private forcePolling = false;
  /** The files of the open watch, by name. */
  private readonly files = new Map<string, Tracked>();
  private arrivals = 0;
  /** Arrival of the last file published or skipped: nothing that arrived before it is taken. */
  private handledArrival = 0;
  /** Signatures (inode, size, mtime) of the files handled lately, oldest first. */
  private readonly handledSignatures = new Set<string>();
  /** Reads and publishes, one at a time, so they land in the order they were taken. */
  private takes: Promise<void> = Promise.resolve();
  private published = 0;
  private skipped = 0;
  private readonly skippedBy: Record<WatchSkipKind, number> = { damaged: 0, refused: 0, unreadable: 0, failed: 0 };
  private lastFile: string | null = null;
  private lastSkipped: WatchStatus['lastSkipped'] = null;
  private lastSkipWarnAt = -Infinity;
  private skipsSinceWarn = 0;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly notifier: ImageNotifier,
    private readonly fileWatcher: FileWatcher,
  ) {}

  get enabled(): boolean {
    return this.options.watchPath !== undefined;
  }

  /**
   * The image this service publishes, never taken as input: with WATCH_PATH set to the
   * web folder, each publish would otherwise be seen as a new image, forever.
   */
  private get ownImage(): string {
    return join(this.options.webFolder, IMAGE_FILE);
  }

  status(): WatchStatus {
    return {
      path: this.options.watchPath ?? '',
      target: this.target ?? 'missing',
      changeEvents: this.watch?.handle !== undefined,
      polling: this.watch?.handle?.polling ?? false,
      ready: this.watch?.ready ?? false,
      settleMs: this.options.watchSettleMs,
      pollIntervalMs: this.options.watchPollIntervalMs,
      exposurePerImageSeconds: this.options.watchExposureSeconds,
      imagesPublished: this.published,
      filesSkipped: this.skipped,
      skippedBy: { ...this.skippedBy },
      lastFile: this.lastFile,
      lastSkipped: this.lastSkipped,
    };
  }

  onApplicationBootstrap(): void {
    if (this.enabled) {
      this.start();
    }
  }

  /** The first shutdown hook Nest runs: no new image is taken once the app closes. */
  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  start(): void {
    if (this.running) {
      return;
    }
    if (this.options.watchPath === this.ownImage) {
      this.logger.error(`WATCH_PATH is ${this.ownImage}, the image this service publishes: nothing to watch`);
      return;
    }
    this.running = true;
    this.logger.log(`watching ${this.options.watchPath} for new images (settle ${this.options.watchSettleMs} ms)`);
    // What WATCH_PATH is (folder, file, missing, recreated) is checked on this timer; its content through the watch.
    this.targetTimer = setInterval(() => this.requestTargetCheck(), this.options.watchPollIntervalMs);
    this.requestTargetCheck();
  }

  /** Stops the timers and the folder watch, then waits for a publish in progress to end. */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.targetTimer);
    this.targetTimer = undefined;
    await this.checking;
    await this.closeWatch();
    await this.takes;
  }

  /** The stat of every path the watch looks at; undefined when it does not exist (a seam for tests that count them). */
  protected async statPath(path: string): Promise<Stats | undefined> {
    try {
      return await stat(path);
    } catch (err) {
      if (isMissing(err)) {
        return undefined;
      }
      throw err;
    }
  }

  private requestTargetCheck(): void {
    if (!this.running) {
      return;
    }
    if (this.checking) {
      this.recheckRequested = true;
      return;
    }
    this.checking = this.checkTargetWhileRequested().finally(() => (this.checking = undefined));
  }

  private async checkTargetWhileRequested(): Promise<void> {
    do {
      this.recheckRequested = false;
      try {
        await this.checkTarget();
        this.lastTargetError = undefined;
      } catch (err) {
        // Said once, not at every check (a share gone away, a permission denied).
        const message = (err as Error).message;
        if (message !== this.lastTargetError) {
          this.logger.warn(`cannot look at ${this.options.watchPath}: ${message}`);
          this.lastTargetError = message;
        }
      }
    } while (this.recheckRequested && this.running);
  }

  /** Opens the watch that fits what `watchPath` is now: the folder, or the parent of a file (or of what is not there yet). */
  private async checkTarget(): Promise<void> {
    const path = this.options.watchPath!;
    const stats = await this.statPath(path);
    if (stats?.isDirectory()) {
      this.setTarget('folder');
      await this.ensureWatch(path, `folder ${stats.dev}:${stats.ino}`, (name) => isWatchedImageName(name) && join(path, name) !== this.ownImage);
      await this.relist();
      return;
    }
    this.setTarget(stats?.isFile() ? 'file' : 'missing');
    const parent = dirname(path);
    const parentStats = await this.statPath(parent);
    if (parentStats?.isDirectory()) {
      const name = basename(path);
      await this.ensureWatch(parent, `parent ${parentStats.dev}:${parentStats.ino}`, (entry) => entry === name);
      await this.relist();
    } else {
      await this.closeWatch();
    }
  }

  private async ensureWatch(folder: string, key: string, accepts: (name: string) => boolean): Promise<void> {
    if (this.watch?.key === key) {
      return;
    }
    await this.closeWatch();
    const polling = this.forcePolling || (await this.fileWatcher.isNetworkFolder(folder));
    // A check that ends after stop() must not open a new watch.
    if (!this.running || this.watch !== undefined) {
      return;
    }
    const open: OpenWatch = { key, folder, handle: undefined, accepts, ready: false, reported: new Set(), initial: new Set() };
    this.watch = open;
    open.handle = this.fileWatcher.watchFolder(
      folder,
      { accepts, usePolling: polling, intervalMs: this.options.watchPollIntervalMs },
      {
        entry: (path, initial) => this.onEntry(open, basename(path), initial),
        folder: (path) => this.onFolder(open, path),
        removed: (path) => this.onRemoved(open, path),
        ready: () => void this.onReady(open),
        error: (err) => this.onWatchError(open, err),
      },
    );
    this.logger.debug(`watching ${folder}${open.handle.polling ? ` by polling every ${this.options.watchPollIntervalMs} ms` : ''}`);
  }

  /**
   * chokidar can miss a file that appears while it lists the folder: names it never
   * reported are looked at here, at each check of the target (a readdir, no stat).
   */
  private async relist(): Promise<void> {
    const open = this.watch;
    if (!open?.ready) {
      return;
    }
    let names: string[];
    try {
      names = await readdir(open.folder);
    } catch {
      return;
    }
    for (const name of names) {
      if (open !== this.watch) {
        return;
      }
      if (!open.reported.has(name) && open.accepts(name)) {
        open.reported.add(name);
        await this.observe(open, name);
      }
    }
  }

  private async closeWatch(): Promise<void> {
    const open = this.watch;
    this.watch = undefined;
    for (const file of this.files.values()) {
      clearTimeout(file.timer);
    }
    this.files.clear();
    await open?.handle?.close();
  }

  private onEntry(open: OpenWatch, name: string, initial: boolean): void {
    if (open !== this.watch) {
      return;
    }
    open.reported.add(name);
    if (initial || !open.ready) {
      open.initial.add(name);
      return;
    }
    void this.observe(open, name);
  }

  /**
   * The first listing: every file is statted once; the newest by modification time may be
   * news (a stacker's output from before the start), the others are history.
   */
  private async onReady(open: OpenWatch): Promise<void> {
    const seen: WatchCandidate[] = [];
    for (const name of open.initial) {
      const candidate = open === this.watch ? await this.look(open, name) : undefined;
      if (candidate) {
        seen.push(candidate);
      }
    }
    if (open !== this.watch) {
      return;
    }
    open.ready = true;
    open.initial.clear();
    for (const candidate of seen) {
      if (!this.files.has(candidate.name)) {
        this.files.set(candidate.name, { seen: candidate, arrival: 0, changedAt: performance.now(), replaced: false, windowStart: undefined, timer: undefined });
      }
    }
    const newest = pickNewest(seen.filter((c) => !this.handledSignatures.has(c.signature) && this.files.get(c.name)?.arrival === 0));
    if (newest) {
      this.arrive(newest, false);
    }
  }

  private onFolder(open: OpenWatch, path: string): void {
    if (open !== this.watch) {
      return;
    }
    open.reported.add(basename(path));
    if (path === this.options.watchPath) {
      this.requestTargetCheck();
    } else {
      this.skipEntry(basename(path), 'unreadable', 'a folder, not an image file');
    }
  }

  private onRemoved(open: OpenWatch, path: string): void {
    if (open !== this.watch) {
      return;
    }
    open.reported.delete(basename(path));
    const file = this.files.get(basename(path));
    clearTimeout(file?.timer);
    this.files.delete(basename(path));
    if (path === open.folder) {
      this.requestTargetCheck();
    }
  }

  private onWatchError(open: OpenWatch, err: NodeJS.ErrnoException): void {
    if (open !== this.watch) {
      return;
    }
    if (err.path !== undefined && dirname(err.path) === open.folder && err.path !== open.folder) {
      // One entry chokidar could not stat (a symlink loop, a permission denied): the others go on.
      open.reported.add(basename(err.path));
      this.skipEntry(basename(err.path), 'unreadable', err.message);
      return;
    }
    if (!this.forcePolling && err.code !== undefined && NO_OS_WATCH.has(err.code)) {
      this.logger.warn(`no change events for ${open.folder} (${err.message}); polling every ${this.options.watchPollIntervalMs} ms`);
      this.forcePolling = true;
      void this.closeWatch().then(() => this.requestTargetCheck());
      return;
    }
    this.logger.warn(`watch on ${open.folder}: ${err.message}`);
  }

  /** Stats `name`: the file as it is now, or undefined (gone, or not a file: skipped). */
  private async look(open: OpenWatch, name: string): Promise<WatchCandidate | undefined> {
    const path = join(open.folder, name);
    let stats: Stats | undefined;
    try {
      stats = await this.statPath(path);
    } catch (err) {
      this.skipEntry(name, 'unreadable', (err as Error).message);
      return undefined;
    }
    if (!stats) {
      this.forget(name);
      return undefined;
    }
    if (!stats.isFile()) {
      this.skipEntry(name, 'unreadable', `not a regular file (${stats.isDirectory() ? 'a folder' : stats.isFIFO() ? 'a FIFO' : 'a device or socket'})`);
      return undefined;
    }
    return candidateOf(path, name, stats);
  }

  /** A change event for `name`: if the file is not what it was, it arrives now. */
  private async observe(open: OpenWatch, name: string): Promise<void> {
    const candidate = await this.look(open, name);
    if (!candidate || open !== this.watch) {
      return;
    }
    const known = this.files.get(name);
    if (known?.seen.signature === candidate.signature) {
      return;
    }
    this.arrive(candidate, known !== undefined && known.seen.identity !== candidate.identity);
  }

  /** Notes a new version of a file with the next arrival number, and when to try it. */
  private arrive(candidate: WatchCandidate, replaced: boolean): void {
    const now = performance.now();
    const file = this.files.get(candidate.name) ?? { seen: candidate, arrival: 0, changedAt: now, replaced, windowStart: undefined, timer: undefined };
    file.seen = candidate;
    file.arrival = ++this.arrivals;
    file.changedAt = now;
    file.replaced = replaced;
    file.windowStart ??= now;
    this.files.set(candidate.name, file);
    this.schedule(file);
  }

  private settleFor(file: Tracked): number {
    return file.replaced ? Math.min(RENAME_SETTLE_MAX_MS, this.options.watchSettleMs / 4) : this.options.watchSettleMs;
  }

  /**
   * Tries `file` once it settled, or at the end of its try window if it keeps changing. Node
   * starts a timer from the event loop's clock, which lags `performance.now()` when the loop is
   * busy: a timer that fires before `due` waits the rest, or the file would look unsettled, be
   * tried again, and be overtaken by a file that came after it (then dropped as older).
   */
  private schedule(file: Tracked): void {
    file.windowStart ??= performance.now();
    const due = Math.min(file.changedAt + this.settleFor(file), file.windowStart + this.options.watchSettleMs);
    const fire = (): void => {
      const early = due - performance.now();
      if (early > 0) {
        file.timer = setTimeout(fire, early);
        return;
      }
      file.timer = undefined;
      this.takes = this.takes.then(() => this.take(file)).catch((err: Error) => this.logger.error(`watch: ${err.message}`));
    };
    clearTimeout(file.timer);
    file.timer = setTimeout(fire, Math.max(0, due - performance.now()));
  }

  private forget(name: string): void {
    clearTimeout(this.files.get(name)?.timer);
    this.files.delete(name);
  }

  /** Reads `file` whole and publishes it, unless something that arrived later was already taken. */
  private async take(file: Tracked): Promise<void> {
    const open = this.watch;
    if (!this.running || !open || this.files.get(file.seen.name) !== file || file.timer !== undefined) {
      // Stopped, gone, or changed again since its timer fired: its new timer will come.
      return;
    }
    if (file.arrival <= this.handledArrival || this.handledSignatures.has(file.seen.signature)) {
      // Older than the last file taken, or a file already taken, renamed (same inode, size and mtime).
      file.windowStart = undefined;
      return;
    }
    const { seen: candidate, arrival } = file;
    const triedAt = performance.now();
    // Refusals count as skips only after a full settle time: a "renamed" file may be a writer
    // that deleted and recreated it, still writing. Its timer never fires before `due`
    // (schedule), which is this very sum when it waited for the settle time.
    const settled = triedAt >= file.changedAt + this.options.watchSettleMs;
    if (candidate.size > this.options.maxImageBytes) {
      // The same bound as an upload: a huge file is never read into memory.
      this.skipFile(candidate, arrival, 'refused', `${candidate.size} bytes is more than the ${this.options.maxImageBytes} allowed (MAX_IMAGE_BYTES)`);
      return;
    }
    let bytes: Buffer | undefined;
    try {
      bytes = await readIfUnchanged(candidate);
    } catch (err) {
      if (isMissing(err)) {
        // Renamed or deleted since: the watch reports what is there now.
        this.forget(candidate.name);
      } else {
        this.skipFile(candidate, arrival, 'unreadable', (err as Error).message);
      }
      return;
    }
    if (!bytes) {
      // Changed since it was seen, or while it was read (an event may have been coalesced).
      const now = await this.look(open, candidate.name);
      if (now && this.files.get(candidate.name) === file && file.arrival === arrival) {
        if (now.signature !== candidate.signature) {
          this.arrive(now, now.identity !== candidate.identity);
        } else {
          file.windowStart = performance.now();
          this.schedule(file);
        }
      }
      return;
    }
    const stackSize = this.published + 1;
    try {
      // A FITS stack's header (STACKCNT, LIVETIME...) wins over the watch's own count.
      const counted: ImageMetrics = { stackSize, exposureSeconds: stackSize * this.options.watchExposureSeconds };
      // N.I.N.A. names its live stack `<Target>-<Filter>.fits`; an OBJECT card still wins.
      const named = ninaFileName(candidate.name);
      if (named) {
        counted.object = named.object;
        counted.details = { filter: named.filter };
      }
      await this.notifier.publish(bytes, {}, { fallbackMetrics: counted });
    } catch (err) {
      if (!settled && err instanceof ImageRejectedError) {
        // Read in the middle of a rewrite: tried again once it settles, or in the next window.
        this.logger.debug(`${candidate.name} is not complete yet (${err.message}); trying again`);
        this.tried(file, arrival, triedAt, true);
        return;
      }
      this.skipFile(candidate, arrival, skipKindOf(err), (err as Error).message);
      this.tried(file, arrival, triedAt, false);
      return;
    }
    this.markHandled(candidate.signature, arrival);
    this.published = stackSize;
    this.lastFile = candidate.name;
    this.logger.log(`published ${candidate.name} (${bytes.length} bytes), image ${stackSize} of the session`);
    this.tried(file, arrival, triedAt, false);
  }

  /** After a try: the next one no sooner than a settle time later; none if nothing changed and `again` is false. */
  private tried(file: Tracked, arrival: number, triedAt: number, again: boolean): void {
    if (this.files.get(file.seen.name) !== file) {
      return;
    }
    file.windowStart = triedAt;
    if (again || file.arrival !== arrival) {
      this.schedule(file);
    } else {
      file.windowStart = undefined;
    }
  }

  /** `candidate` as it was read: the tracked file may have changed since (a newer version that must still be tried). */
  private skipFile(candidate: WatchCandidate, arrival: number, kind: WatchSkipKind, reason: string): void {
    this.markHandled(candidate.signature, arrival);
    this.skipEntry(candidate.name, kind, reason);
  }

  private markHandled(signature: string, arrival: number): void {
    this.handledArrival = arrival;
    this.handledSignatures.delete(signature);
    this.handledSignatures.add(signature);
    if (this.handledSignatures.size > HANDLED_MEMORY) {
      this.handledSignatures.delete(this.handledSignatures.values().next().value!);
    }
  }

  /** Counts and logs a skip: a warning at most every {@link SKIP_LOG_EVERY_MS}, the others at debug level. */
  private skipEntry(name: string, kind: WatchSkipKind, reason: string): void {
    this.skipped++;
    this.skippedBy[kind]++;
    this.lastSkipped = { file: name, kind, reason, at: new Date().toISOString() };
    const line = `skipped ${name} (${kind}): ${reason}; waiting for the next image`;
    const now = performance.now();
    if (now - this.lastSkipWarnAt < SKIP_LOG_EVERY_MS) {
      this.skipsSinceWarn++;
      this.logger.debug(line);
      return;
    }
    const more = this.skipsSinceWarn > 0 ? ` (${this.skipsSinceWarn} more skipped before, see /status)` : '';
    this.logger.warn(line + more);
    this.lastSkipWarnAt = now;
    this.skipsSinceWarn = 0;
  }

  private setTarget(target: WatchTarget): void {
    if (target === this.target) {
      return;
    }
    const was = this.target;
    this.target = target;
    if (target === 'missing') {
      this.logger.warn(`${this.options.watchPath} does not exist (any more); waiting for it`);
    } else if (was !== undefined) {
      this.logger.log(`${this.options.watchPath} is here (a ${target})`);
    }
  }
}

function skipKindOf(err: unknown): WatchSkipKind {
  if (err instanceof ImageRejectedError) {
    return err.reason === 'corrupt' ? 'damaged' : 'refused';
  }
  return 'failed';
}

/**
 * The bytes of the file `candidate` was, if it still is that file (same inode, size and
 * mtime, checked on the open file before and after reading); undefined if it changed.
 * Reading through one open file keeps a rename over the path during the read harmless;
 * O_NONBLOCK keeps a FIFO swapped in under the name from blocking the open.
 */
async function readIfUnchanged(candidate: WatchCandidate): Promise<Buffer | undefined> {
  const file = await open(candidate.path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const same = async (): Promise<boolean> => {
      const now = await file.stat();
      return now.isFile() && candidateOf(candidate.path, candidate.name, now).signature === candidate.signature;
    };
    if (!(await same())) {
      return undefined;
    }
    const bytes = await file.readFile();
    return bytes.length === candidate.size && (await same()) ? bytes : undefined;
  } finally {
    await file.close();
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
