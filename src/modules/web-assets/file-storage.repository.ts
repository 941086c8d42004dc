import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
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
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(temp, data);
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
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
