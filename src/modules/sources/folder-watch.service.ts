import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ImageNotifier } from '../image-notifier/image-notifier.service.js';
import { IMAGE_FILE } from '../web-assets/web-assets.service.js';
import {
  candidateOf,
  comesAfter,
  isWatchedImageName,
  mapWithLimit,
  newestFirst,
  type HandledFile,
  type WatchCandidate,
} from './watch-scan.js';

/** What `WATCH_PATH` is right now. */
export type WatchTarget = 'folder' | 'file' | 'missing';

/** The watch as `/status` reports it. */
export interface WatchStatus {
  path: string;
  target: WatchTarget;
  /** True while change events arrive from the OS; the periodic scan runs either way. */
  changeEvents: boolean;
  settleMs: number;
  pollIntervalMs: number;
  exposurePerImageSeconds: number;
  /** Images the watch published in this session (the STACK_SIZE it reports). */
  imagesPublished: number;
  /** Files that could not be published (damaged, unreadable), each logged. */
  filesSkipped: number;
  lastFile: string | null;
  lastSkipped: { file: string; reason: string; at: string } | null;
}

/**
 * Change events come in bursts (one per chunk a stacker writes); they are gathered into
 * one scan after this long. Small next to any settle time, so it adds little latency.
 */
const EVENT_COALESCE_MS = 20;

/**
 * A file that took the place of another under the same name (a new inode: an atomic
 * writer's rename) counts as complete once unchanged for a quarter of the settle time, at
 * most this long. A rename puts a whole file there at once; the short wait is for the odd
 * writer that deletes the file and writes a new one, whose size would still be growing.
 * It lets a stacker that replaces its output faster than the settle time be followed.
 */
const RENAME_SETTLE_MAX_MS = 100;

/** Files newer than the last one published that are followed until they settle, newest first. */
const MAX_FOLLOWED = 16;

/**
 * Of the files known from earlier scans, this many of the newest are looked at again at
 * each scan: a stacker rewriting its latest file in place is seen without change events.
 */
const RESTAT_NEWEST = 4;

/** Stats run side by side, this many at a time (on a network share each is a round trip). */
const STAT_CONCURRENCY = 8;

/** Every file of the folder is looked at again this often, in case a change was missed. */
const FULL_SCAN_EVERY_MS = 30_000;

/** A file of the watch as it was last looked at. */
interface Followed {
  seen: WatchCandidate;
  /** When (performance.now) it was first seen with its current signature. */
  since: number;
  /** It is another file than the one seen before under its name, and unchanged since it appeared. */
  replaced: boolean;
  /** The scan that looked at it last: only what the current scan saw can be taken. */
  scan: number;
}

/**
 * Follows `watchPath` (a file, or a folder where the newest image wins) and publishes
 * each image a stacker finishes writing there, once, in order.
 *
 * "Finished" means: the file's identity, size and modification time stayed the same for
 * `watchSettleMs`, and while it was read. A file that replaced another under the same name
 * (a rename into place: a new inode) needs only a quarter of that, at most 100 ms. Each
 * file is followed on its own, so a stacker adding a new file more often than the settle
 * time still gets published: the newest file that has settled is taken, never one older
 * than the last taken, and a newer file still being written waits for its own turn. A
 * rename keeps inode, size and mtime, so a file taken under one name is not taken again
 * under the next. Temp names are never taken (see `isWatchedImageName`). A file that still
 * cannot be decoded (damaged, or a writer that paused longer than the settle time) is
 * logged and skipped until it changes again; the watch goes on.
 *
 * Change events (fs.watch) make it prompt on local disks and say which names changed; a
 * scan stats those, new names, the files still settling and the newest few, in parallel,
 * not every file of a folder holding a night of frames. A periodic scan covers network
 * shares, where events are not delivered, and a folder that does not exist yet or was
 * deleted and recreated; every file is looked at again every 30 s.
 */
@Injectable()
export class FolderWatchService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('FolderWatch');
  private running = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private scanDueAt = Infinity;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private watcher: { folder: string; identity: string; handle: FSWatcher } | undefined;
  private target: WatchTarget | undefined;
  /** The image files of the watch by name, as last seen; which folder (or file) they belong to. */
  private files = new Map<string, Followed>();
  private filesOf: string | undefined;
  /** Names change events reported since the last scan. */
  private readonly changed = new Set<string>();
  private fullScanDue = true;
  private lastFullScanAt = -Infinity;
  private scans = 0;
  /** The last file published or skipped: nothing at or before it is taken again. */
  private handled: HandledFile | undefined;
  private published = 0;
  private skipped = 0;
  private lastFile: string | null = null;
  private lastSkipped: WatchStatus['lastSkipped'] = null;
  private lastScanError: string | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly notifier: ImageNotifier,
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

  private get renameSettleMs(): number {
    return Math.min(RENAME_SETTLE_MAX_MS, this.options.watchSettleMs / 4);
  }

  status(): WatchStatus {
    return {
      path: this.options.watchPath ?? '',
      target: this.target ?? 'missing',
      changeEvents: this.watcher !== undefined,
      settleMs: this.options.watchSettleMs,
      pollIntervalMs: this.options.watchPollIntervalMs,
      exposurePerImageSeconds: this.options.watchExposureSeconds,
      imagesPublished: this.published,
      filesSkipped: this.skipped,
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
    this.logger.log(
      `watching ${this.options.watchPath} for new images (settle ${this.options.watchSettleMs} ms, scan every ${this.options.watchPollIntervalMs} ms)`,
    );
    this.pollTimer = setInterval(() => this.requestScan(), this.options.watchPollIntervalMs);
    this.requestScan();
  }

  /** Stops every timer and the OS watcher, then waits for a publish in progress to end. */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.pollTimer);
    clearTimeout(this.scanTimer);
    this.pollTimer = undefined;
    this.scanTimer = undefined;
    this.scanDueAt = Infinity;
    this.closeWatcher();
    await this.scanning;
  }

  /** The stat of every path the watch looks at (a seam for tests that count them). */
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

  /** One scan at a time; a request during a scan runs one more right after it. */
  private requestScan(): void {
    if (!this.running) {
      return;
    }
    if (this.scanning) {
      this.rescanRequested = true;
      return;
    }
    this.scanning = this.scanWhileRequested().finally(() => (this.scanning = undefined));
  }

  /** Scans again in `delayMs`, unless a scan is already due sooner. */
  private scanIn(delayMs: number): void {
    const due = performance.now() + delayMs;
    if (!this.running || due >= this.scanDueAt) {
      return;
    }
    clearTimeout(this.scanTimer);
    this.scanDueAt = due;
    this.scanTimer = setTimeout(() => {
      this.scanTimer = undefined;
      this.scanDueAt = Infinity;
      this.requestScan();
    }, delayMs);
  }

  private async scanWhileRequested(): Promise<void> {
    do {
      this.rescanRequested = false;
      try {
        await this.scan();
        this.lastScanError = undefined;
      } catch (err) {
        // Say it once, not at every poll (a share gone away, a permission denied).
        const message = (err as Error).message;
        if (message !== this.lastScanError) {
          this.logger.warn(`cannot scan ${this.options.watchPath}: ${message}`);
          this.lastScanError = message;
        }
      }
    } while (this.rescanRequested && this.running);
  }

  /**
   * Takes the newest file that has settled and comes after the last one handled; files
   * newer than it that are still settling are looked at again when their time is up.
   */
  private async scan(): Promise<void> {
    const scanId = ++this.scans;
    const now = performance.now();
    await this.look(scanId);
    let waitMs = Infinity;
    for (const file of this.followed()) {
      if (file.scan !== scanId) {
        // Not looked at in this scan (it just moved up the list): the next one will.
        waitMs = Math.min(waitMs, EVENT_COALESCE_MS);
        continue;
      }
      const left = (file.replaced ? this.renameSettleMs : this.options.watchSettleMs) - (now - file.since);
      if (left <= 0) {
        await this.take(file);
        break;
      }
      waitMs = Math.min(waitMs, left);
    }
    if (waitMs < Infinity) {
      this.scanIn(Math.max(1, waitMs));
    }
  }

  /** The files that may still be published, newest first, at most {@link MAX_FOLLOWED}. */
  private followed(): Followed[] {
    return [...this.files.values()]
      .filter((file) => comesAfter(file.seen, this.handled))
      .sort((a, b) => newestFirst(a.seen, b.seen))
      .slice(0, MAX_FOLLOWED);
  }

  private async take(file: Followed): Promise<void> {
    const candidate = file.seen;
    let bytes: Buffer | undefined;
    try {
      bytes = await readIfUnchanged(candidate);
    } catch (err) {
      if (isMissing(err)) {
        // Gone between the scan and the read (renamed or deleted): look again.
        this.changed.add(candidate.name);
        this.rescanRequested = true;
        return;
      }
      this.skip(candidate, (err as Error).message);
      return;
    }
    if (!bytes) {
      // Changed since it was seen, or while it was read: not finished after all.
      this.changed.add(candidate.name);
      this.rescanRequested = true;
      return;
    }
    this.handled = { name: candidate.name, signature: candidate.signature, mtimeMs: candidate.mtimeMs };
    const stackSize = this.published + 1;
    try {
      await this.notifier.publish(bytes, {
        stackSize,
        exposureSeconds: stackSize * this.options.watchExposureSeconds,
      });
    } catch (err) {
      this.skip(candidate, (err as Error).message);
      return;
    }
    this.published = stackSize;
    this.lastFile = candidate.name;
    this.logger.log(`published ${candidate.name} (${bytes.length} bytes), image ${stackSize} of the session`);
  }

  private skip(candidate: WatchCandidate, reason: string): void {
    this.handled = { name: candidate.name, signature: candidate.signature, mtimeMs: candidate.mtimeMs };
    this.skipped++;
    this.lastSkipped = { file: candidate.name, reason, at: new Date().toISOString() };
    this.logger.warn(`skipped ${candidate.name}: ${reason}; waiting for the next image`);
  }

  /** What `watchPath` is now, an OS watcher on the right folder, and its files seen again. */
  private async look(scan: number): Promise<void> {
    const path = this.options.watchPath!;
    const stats = await this.statPath(path);
    if (stats?.isDirectory()) {
      this.setTarget('folder');
      this.ensureWatcher(path, stats);
      this.useFilesOf(`folder ${stats.dev}:${stats.ino}`);
      await this.lookInFolder(path, scan);
      return;
    }
    // A file, or nothing yet: watch the folder it is (or will be) in, if that exists.
    const parent = dirname(path);
    const parentStats = await this.statPath(parent);
    if (parentStats?.isDirectory()) {
      this.ensureWatcher(parent, parentStats);
    } else {
      this.closeWatcher();
    }
    if (stats?.isFile() && path !== this.ownImage) {
      this.setTarget('file');
      this.useFilesOf('file');
      this.changed.clear();
      this.record(candidateOf(path, basename(path), stats), scan);
      return;
    }
    this.setTarget('missing');
    this.useFilesOf(undefined);
  }

  /**
   * Lists the folder and stats only what can matter: new names, names change events
   * reported, the files still followed and the newest few known; every file at the first
   * scan of a folder and every {@link FULL_SCAN_EVERY_MS}.
   */
  private async lookInFolder(folder: string, scan: number): Promise<void> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) {
        this.files.clear();
        return;
      }
      throw err;
    }
    const names = entries
      .filter((entry) => !entry.isDirectory() && isWatchedImageName(entry.name) && join(folder, entry.name) !== this.ownImage)
      .map((entry) => entry.name);
    const present = new Set(names);
    for (const name of this.files.keys()) {
      if (!present.has(name)) {
        this.files.delete(name);
      }
    }
    let wanted: string[];
    const now = performance.now();
    if (this.fullScanDue || now - this.lastFullScanAt >= FULL_SCAN_EVERY_MS) {
      this.fullScanDue = false;
      this.lastFullScanAt = now;
      wanted = names;
    } else {
      const some = new Set(names.filter((name) => !this.files.has(name) || this.changed.has(name)));
      const known = [...this.files.values()].sort((a, b) => newestFirst(a.seen, b.seen));
      known.slice(0, RESTAT_NEWEST).forEach((file) => some.add(file.seen.name));
      this.followed().forEach((file) => some.add(file.seen.name));
      wanted = [...some];
    }
    // Events from now on are for the next scan.
    this.changed.clear();
    const seen = await mapWithLimit(wanted, STAT_CONCURRENCY, async (name) => {
      const path = join(folder, name);
      return { name, path, stats: await this.statPath(path) };
    });
    for (const { name, path, stats } of seen) {
      if (stats?.isFile()) {
        this.record(candidateOf(path, name, stats), scan);
      } else {
        this.files.delete(name);
      }
    }
  }

  /** Notes what a file looks like now; its settle time starts again when that changed. */
  private record(candidate: WatchCandidate, scan: number): void {
    const before = this.files.get(candidate.name);
    if (before?.seen.signature === candidate.signature) {
      before.seen = candidate;
      before.scan = scan;
      return;
    }
    this.files.set(candidate.name, {
      seen: candidate,
      since: performance.now(),
      replaced: before !== undefined && before.seen.identity !== candidate.identity,
      scan,
    });
  }

  /** Forgets the files seen when the watch now looks at another folder, or at a file. */
  private useFilesOf(key: string | undefined): void {
    if (key === this.filesOf) {
      return;
    }
    this.filesOf = key;
    this.files.clear();
    this.changed.clear();
    this.fullScanDue = true;
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

  /**
   * Keeps one fs.watch on `folder`. The identity check replaces it when the folder was
   * deleted and recreated: a watcher on the old inode would never fire again.
   */
  private ensureWatcher(folder: string, stats: Stats): void {
    const identity = `${stats.dev}:${stats.ino}`;
    // `running` is checked for a scan that ends after stop(): it must not open a new watcher.
    if (!this.running || (this.watcher?.folder === folder && this.watcher.identity === identity)) {
      return;
    }
    this.closeWatcher();
    try {
      const handle = watch(folder, { persistent: false }, (_event, name) => {
        if (name === null) {
          // The OS could not say which file: look at all of them.
          this.fullScanDue = true;
          this.scanIn(EVENT_COALESCE_MS);
          return;
        }
        if (this.concerns(folder, String(name))) {
          this.changed.add(String(name));
          this.scanIn(EVENT_COALESCE_MS);
        }
      });
      handle.on('error', (err) => {
        this.logger.debug(`change events on ${folder} stopped (${err.message}); the periodic scan goes on`);
        this.closeWatcher();
        this.fullScanDue = true;
        this.requestScan();
      });
      this.watcher = { folder, identity, handle };
    } catch (err) {
      // Too many watches (ENOSPC), a share that does not support them: the scan still runs.
      this.logger.debug(`no change events for ${folder} (${(err as Error).message}); scanning every ${this.options.watchPollIntervalMs} ms`);
    }
  }

  /** Whether an event on `name` in `folder` can change what the watch publishes. */
  private concerns(folder: string, name: string): boolean {
    const path = this.options.watchPath!;
    // In the watched folder, images (a rename into place reports the new name too);
    // in the parent of a watched file or of a folder still to come, that one name.
    return folder === path ? isWatchedImageName(name) : name === basename(path);
  }

  private closeWatcher(): void {
    this.watcher?.handle.close();
    this.watcher = undefined;
  }
}

/**
 * The bytes of the file `candidate` was, if it still is that file (same inode, size and
 * mtime, checked on the open file before and after reading); undefined if it changed.
 * Reading through one open file keeps a rename over the path during the read harmless.
 */
async function readIfUnchanged(candidate: WatchCandidate): Promise<Buffer | undefined> {
  const file = await open(candidate.path, 'r');
  try {
    const same = async (): Promise<boolean> => candidateOf(candidate.path, candidate.name, await file.stat()).signature === candidate.signature;
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
