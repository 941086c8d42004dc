import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ImageNotifier } from '../image-notifier/image-notifier.service.js';
import { IMAGE_FILE } from '../web-assets/web-assets.service.js';
import { candidateOf, isWatchedImageName, pickNewest, type WatchCandidate } from './watch-scan.js';

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
 * Follows `watchPath` (a file, or a folder where the newest image wins) and publishes
 * each image a stacker finishes writing there, once.
 *
 * "Finished" means: the file's identity, size and modification time stayed the same for
 * `watchSettleMs`, and again after it was read. That covers stackers that write in
 * place, in pieces with pauses, or to a temp file renamed into place (a rename keeps
 * inode, size and mtime, so the renamed file is not published twice). A file that still
 * cannot be decoded (damaged, or a writer that paused longer than the settle time) is
 * logged and skipped until it changes again; the watch goes on.
 *
 * Change events (fs.watch) make it prompt on local disks; a periodic scan covers network
 * shares, where events are not delivered, and a folder that does not exist yet or was
 * deleted and recreated.
 */
@Injectable()
export class FolderWatchService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnModuleDestroy {
  private readonly logger = new Logger('FolderWatch');
  private running = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private scanDueAt = Infinity;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private watcher: { folder: string; identity: string; handle: FSWatcher } | undefined;
  private target: WatchTarget | undefined;
  /** The newest candidate and when it was first seen with its current signature. */
  private pending: { signature: string; since: number } | undefined;
  /** The last file published or skipped: it is not taken again until it changes. */
  private handled: { signature: string; mtimeMs: number } | undefined;
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

  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

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

  private async scan(): Promise<void> {
    const candidate = await this.findNewest();
    if (!candidate || !this.isNew(candidate)) {
      this.pending = undefined;
      return;
    }
    const now = performance.now();
    if (this.pending?.signature !== candidate.signature) {
      this.pending = { signature: candidate.signature, since: now };
      this.scanIn(this.options.watchSettleMs);
      return;
    }
    const waited = now - this.pending.since;
    if (waited < this.options.watchSettleMs) {
      this.scanIn(this.options.watchSettleMs - waited);
      return;
    }
    await this.take(candidate);
  }

  /** Newer than what was last taken, or the same file changed since. */
  private isNew(candidate: WatchCandidate): boolean {
    if (!this.handled) {
      return true;
    }
    // An older file that comes back on top (the newest one was deleted) is not news.
    return candidate.signature !== this.handled.signature && candidate.mtimeMs >= this.handled.mtimeMs;
  }

  private async take(candidate: WatchCandidate): Promise<void> {
    let bytes: Buffer;
    let after: Stats;
    try {
      bytes = await readFile(candidate.path);
      after = await stat(candidate.path);
    } catch (err) {
      if (isMissing(err)) {
        // Gone between the scan and the read (renamed or deleted): look again.
        this.pending = undefined;
        this.rescanRequested = true;
        return;
      }
      this.skip(candidate, (err as Error).message);
      return;
    }
    const now = candidateOf(candidate.path, candidate.name, after);
    if (now.signature !== candidate.signature || bytes.length !== candidate.size) {
      // Written to while it was read: not finished after all.
      this.pending = { signature: now.signature, since: performance.now() };
      this.scanIn(this.options.watchSettleMs);
      return;
    }
    this.handled = { signature: candidate.signature, mtimeMs: candidate.mtimeMs };
    this.pending = undefined;
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
    this.handled = { signature: candidate.signature, mtimeMs: candidate.mtimeMs };
    this.pending = undefined;
    this.skipped++;
    this.lastSkipped = { file: candidate.name, reason, at: new Date().toISOString() };
    this.logger.warn(`skipped ${candidate.name}: ${reason}; waiting for the next image`);
  }

  /** What `watchPath` is now, its newest image, and an OS watcher on the right folder. */
  private async findNewest(): Promise<WatchCandidate | undefined> {
    const path = this.options.watchPath!;
    const stats = await statOrUndefined(path);
    if (stats?.isDirectory()) {
      this.setTarget('folder');
      this.ensureWatcher(path, stats);
      return this.newestIn(path);
    }
    // A file, or nothing yet: watch the folder it is (or will be) in, if that exists.
    const parent = dirname(path);
    const parentStats = await statOrUndefined(parent);
    if (parentStats?.isDirectory()) {
      this.ensureWatcher(parent, parentStats);
    } else {
      this.closeWatcher();
    }
    if (stats?.isFile() && path !== this.ownImage) {
      this.setTarget('file');
      return candidateOf(path, basename(path), stats);
    }
    this.setTarget('missing');
    return undefined;
  }

  private async newestIn(folder: string): Promise<WatchCandidate | undefined> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) {
        return undefined;
      }
      throw err;
    }
    const candidates: WatchCandidate[] = [];
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (!isWatchedImageName(entry.name) || entry.isDirectory() || path === this.ownImage) {
        continue;
      }
      const stats = await statOrUndefined(path);
      if (stats?.isFile()) {
        candidates.push(candidateOf(path, entry.name, stats));
      }
    }
    return pickNewest(candidates);
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
        if (name === null || this.concerns(folder, String(name))) {
          this.scanIn(EVENT_COALESCE_MS);
        }
      });
      handle.on('error', (err) => {
        this.logger.debug(`change events on ${folder} stopped (${err.message}); the periodic scan goes on`);
        this.closeWatcher();
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

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if (isMissing(err)) {
      return undefined;
    }
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
