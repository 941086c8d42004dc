import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Stats } from 'node:fs';

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
  async writeAtomic(path: string, data: Buffer | string): Promise<void> {
    await this.writeAllAtomic([[path, data]]);
  }

  /**
   * Several files that belong together (the image and its data.json): every temp file is
   * written first, then they are renamed in order, so a failed write (disk full) leaves
   * all of them as they were.
   */
  async writeAllAtomic(files: readonly (readonly [path: string, data: Buffer | string])[]): Promise<void> {
    const temps = files.map(([path]) => join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`));
    try {
      await Promise.all(files.map(([, data], i) => writeFile(temps[i], data)));
      for (const [i, [path]] of files.entries()) {
        await rename(temps[i], path);
      }
    } catch (err) {
      await Promise.all(temps.map((temp) => rm(temp, { force: true })));
      throw err;
    }
  }

  /**
   * Removes the temp files that an interrupted write left in `folder` (a crash between
   * write and rename): those of processes that no longer run.
   */
  async removeStaleTemps(folder: string): Promise<void> {
    const names = await readdir(folder);
    const stale = names.filter((name) => {
      const pid = /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name)?.[1];
      return pid !== undefined && !isRunning(Number(pid));
    });
    await Promise.all(stale.map((name) => rm(join(folder, name), { force: true })));
  }

  async ensureFolder(path: string): Promise<void> {
    await mkdir(path, { recursive: true });
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
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
