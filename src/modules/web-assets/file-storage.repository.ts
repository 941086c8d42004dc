import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { copyFile, link, open, readdir, readFile, realpath, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { statSync, type Stats } from 'node:fs';
import { makeFolder } from '../../common/make-folder.js';

/**
 * The filesystem, behind a thin injectable wrapper so services are tested against real
 * temp folders and failures can be fed in without mocking node:fs.
 */
@Injectable()
export class FileStorage {
  /**
   * Writes beside the target (same folder, so same filesystem) under a dot-name the web
   * routes never serve, then renames over it: a reader sees the old file or the new one,
   * never a half-written one.
   */
  async writeAtomic(path: string, data: Buffer | string, { durable = true }: { durable?: boolean } = {}): Promise<void> {
    await this.writeAllAtomic([[path, data]], { durable });
  }

  /**
   * Several files that belong together (the image and its data.json): every temp file is
   * written first, then they are renamed in order, so a failed write (disk full) leaves
   * all of them as they were. `durable` (the default) flushes the files and the folder to the
   * disk first: files that START writes again anyway (the viewer's) pass false.
   */
  async writeAllAtomic(files: readonly (readonly [path: string, data: Buffer | string | StagedFile])[], { durable = true }: { durable?: boolean } = {}): Promise<void> {
    const temps = files.map(([path, data]) => (data instanceof StagedFile ? data.claim(path) : tempBeside(path)));
    try {
      await Promise.all(
        files.map(([, data], i) =>
          data instanceof StagedFile ? Promise.resolve() : durable ? writeDurably(temps[i], data) : writeFile(temps[i], data),
        ),
      );
      for (const [i, [path]] of files.entries()) {
        await this.rename(temps[i], path);
      }
      if (durable) {
        // The renames themselves reach the disk too (a power cut after the answer loses nothing).
        await Promise.all([...new Set(files.map(([path]) => dirname(path)))].map(syncFolder));
      }
    } catch (err) {
      await Promise.all(temps.map((temp) => rm(temp, { force: true })));
      throw err;
    }
  }

  /**
   * Writes `data` durably to a temp file beside `path` ahead of time (while an image is still
   * being cut), for a later {@link writeAllAtomic} to rename into place; {@link StagedFile.discard}
   * removes it when the write does not happen. An interrupted process's are removed at START.
   */
  async stage(path: string, data: Buffer): Promise<StagedFile> {
    const temp = tempBeside(path);
    try {
      await writeDurably(temp, data);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return new StagedFile(path, temp);
  }

  /**
   * Keeps a copy of `path` as `aside` (a hard link, or a copy where links are not
   * supported), replacing the older one atomically; nothing when `path` is missing.
   */
  async keepAside(path: string, aside: string): Promise<void> {
    const temp = tempBeside(aside);
    try {
      await link(path, temp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        return;
      }
      if (code !== 'EPERM' && code !== 'EXDEV' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') {
        throw err;
      }
      await copyFile(path, temp);
    }
    try {
      await this.rename(temp, aside);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /** Renames `from` over `to` (same folder). Every rename of the atomic writes goes through here. */
  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  /**
   * Removes the temp files an interrupted write left in `folder` (a crash between write
   * and rename). Call only while no write of this process is under way (START): then
   * this PID's temps are stale too (a container's PID 1 restarted); another process's
   * are left alone while it runs and for `otherProcessGraceMs` after their last change.
   */
  async removeStaleTemps(folder: string, otherProcessGraceMs = 10 * 60_000): Promise<string[]> {
    const stale: string[] = [];
    for (const name of await readdir(folder)) {
      const pid = TEMP_NAME.exec(name)?.[1];
      if (pid === undefined) {
        continue;
      }
      const owner = Number(pid);
      if (owner === process.pid || !isRunning(owner)) {
        stale.push(name);
        continue;
      }
      const age = await stat(join(folder, name)).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > otherProcessGraceMs) {
        stale.push(name);
      }
    }
    await Promise.all(stale.map((name) => rm(join(folder, name), { force: true })));
    return stale;
  }

  /** Creates `path` and its missing parents (see {@link makeFolder}). */
  ensureFolder(path: string): Promise<void> {
    return makeFolder(path);
  }

  readFile(path: string): Promise<Buffer> {
    return readFile(path);
  }

  realpath(path: string): Promise<string> {
    return realpath(path);
  }

  stat(path: string): Promise<Stats> {
    return stat(path);
  }

  /**
   * Whether `path` exists, answered on the calling thread: one metadata lookup (microseconds)
   * rather than a turn in libuv's pool, where libvips' cuts can keep an fs call waiting for
   * half a second on a small computer (`UV_THREADPOOL_SIZE=2`). For what must answer during
   * publishes (`/status`).
   */
  existsNow(path: string): boolean {
    try {
      return statSync(path, { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  }

  /** Bytes an unprivileged process may still write on the filesystem of `path`. */
  async freeBytes(path: string): Promise<number> {
    const info = await statfs(path);
    return info.bavail * info.bsize;
  }
}

/** A file written to its temp beside `path` by {@link FileStorage.stage}, not yet in place. */
export class StagedFile {
  private used = false;

  constructor(
    readonly path: string,
    private readonly temp: string,
  ) {}

  /** False once a write took it or it was discarded. */
  get available(): boolean {
    return !this.used;
  }

  /** Its temp, for the one write that puts it at `path`. */
  claim(path: string): string {
    if (path !== this.path || this.used) {
      throw new Error(`the file staged for ${this.path} cannot be written to ${path}${this.used ? ' (already used)' : ''}`);
    }
    this.used = true;
    return this.temp;
  }

  /** Removes the temp unless a write used it (then that write renamed or removed it). */
  async discard(): Promise<void> {
    if (!this.used) {
      this.used = true;
      await rm(this.temp, { force: true });
    }
  }
}

/** Writes `data` and flushes it to the disk before the caller renames it into place. */
async function writeDurably(path: string, data: Buffer | string): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** fsync of a folder, so a rename in it is on the disk; filesystems that cannot are passed over. */
async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r').catch(() => undefined);
  try {
    await handle?.sync();
  } catch {
    // EINVAL / EISDIR on filesystems without directory fsync.
  } finally {
    await handle?.close();
  }
}

/** `.<name>.<pid>.<hex>.tmp`: the temp names {@link tempBeside} makes, and only those. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** A temp name beside `path` (same folder, so same filesystem) that the web routes never serve. */
function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
