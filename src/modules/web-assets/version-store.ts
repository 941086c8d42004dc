import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolder } from '../../common/make-folder.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';

/** The folder under the web folder that holds one sub-folder per version (`v/17/`). */
export const VERSIONS_FOLDER = 'v';
/** Where the last version handed out is kept, beside the versions; a dot-name, never served. */
export const VERSION_FILE = '.stackcast-version';

const VERSION_NAME = /^[1-9][0-9]{0,15}$/;

/** True for the name of a version folder: a positive decimal integer without leading zeros. */
export function isVersionName(name: string): boolean {
  return VERSION_NAME.test(name) && Number.isSafeInteger(Number(name));
}

/**
 * The version counter of one web folder: it only grows and is never reused, across
 * restarts too. A number is written to disk before it is handed out, so a crash between
 * `next()` and the announcement skips a number instead of reusing it. On open, the counter
 * is the larger of the file and the highest `v/<n>/` folder (the file may be lost or old).
 */
@Injectable()
export class VersionStore {
  private readonly webFolder: string;
  private last = 0;
  private opened = false;

  constructor(@Inject(IMAGE_SERVER_OPTIONS) options: Pick<ImageServerOptions, 'webFolder'>) {
    this.webFolder = options.webFolder;
  }

  /** The last version handed out (0: none ever in this web folder). */
  get current(): number {
    return this.last;
  }

  /** Reads the persisted counter and the version folders present; returns {@link current}. */
  async open(): Promise<number> {
    const persisted = await readPersisted(join(this.webFolder, VERSION_FILE));
    const folders = await listVersions(this.webFolder);
    this.last = Math.max(this.last, persisted, folders.at(-1) ?? 0);
    this.opened = true;
    return this.last;
  }

  /** Hands out the next version, persisted (atomically) before it is returned. */
  async next(): Promise<number> {
    if (!this.opened) {
      await this.open();
    }
    const version = this.last + 1;
    await this.persist(version);
    this.last = version;
    return version;
  }

  /**
   * Moves the counter up to at least `version` (a version taken elsewhere, e.g. a shared
   * counter): later calls to {@link next} go above it. Never moves it down.
   */
  async advanceTo(version: number): Promise<void> {
    if (!Number.isSafeInteger(version) || version < 0) {
      throw new RangeError(`version must be an integer ≥ 0, got ${String(version)}`);
    }
    if (version > this.last) {
      await this.persist(version);
      this.last = version;
    }
  }

  private async persist(version: number): Promise<void> {
    if (!this.opened) {
      await makeFolder(this.webFolder);
    }
    const path = join(this.webFolder, VERSION_FILE);
    const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, `${version}\n`);
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

/** The version folders present under `<webFolder>/v/`, ascending. */
export async function listVersions(webFolder: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(join(webFolder, VERSIONS_FOLDER));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return [];
    }
    throw err;
  }
  return names
    .filter(isVersionName)
    .map(Number)
    .sort((a, b) => a - b);
}

async function readPersisted(path: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return 0;
    }
    throw err;
  }
  const value = text.trim();
  // A damaged file must not restart the numbering at 1: the folders still count.
  return isVersionName(value) ? Number(value) : 0;
}
