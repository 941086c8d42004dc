import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolder } from '../../common/make-folder.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';

/** The folder under the web folder that holds one sub-folder per version (`v/17/`). */
export const VERSIONS_FOLDER = 'v';
/** Where the last version handed out is kept, beside the versions; a dot-name, never served. */
export const VERSION_FILE = '.stackcast-version';

/** The largest version: 12 digits, far from 2^53 (a publish a second for 31,000 years). */
export const MAX_VERSION = 999_999_999_999;
/** A counter found above this at START was forged or damaged, not counted: numbering starts over. */
export const TRUSTED_VERSION_LIMIT = 100_000_000_000;

const VERSION_NAME = /^[1-9][0-9]{0,11}$/;

/** True for the name of a version folder: an integer from 1 to {@link MAX_VERSION}, without leading zeros. */
export function isVersionName(name: string): boolean {
  return VERSION_NAME.test(name);
}

/**
 * The version counter of one web folder: a number a version was given is never given again,
 * across restarts too. A number is written to disk before it is handed out, so a crash between
 * `next()` and the announcement skips a number instead of reusing it; one handed out for an
 * image then refused is given back ({@link giveBack}). On open, the counter is the larger of
 * the file and the highest `v/<n>/` folder (the file may be lost or old).
 */
@Injectable()
export class VersionStore {
  private readonly logger = new Logger('VersionStore');
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

  /**
   * Reads the persisted counter and the version folders present; returns {@link current}.
   * A counter above {@link TRUSTED_VERSION_LIMIT} is not trusted: numbering starts over
   * from the highest value below it, with a warning, and its folders go to the trash.
   */
  async open(): Promise<number> {
    const persisted = await readPersisted(join(this.webFolder, VERSION_FILE));
    const folders = await listVersions(this.webFolder);
    const oversized = await listOversized(this.webFolder);
    const found = Math.max(persisted, folders.at(-1) ?? 0, oversized.length > 0 ? Number.MAX_SAFE_INTEGER : 0);
    if (found > TRUSTED_VERSION_LIMIT) {
      const kept = folders.filter((v) => v <= TRUSTED_VERSION_LIMIT);
      const start = Math.max(kept.at(-1) ?? 0, persisted <= TRUSTED_VERSION_LIMIT ? persisted : 0);
      const shown = found === Number.MAX_SAFE_INTEGER ? `past ${MAX_VERSION}` : String(found);
      this.logger.warn(`the version counter in ${this.webFolder} is ${shown}, above ${TRUSTED_VERSION_LIMIT} (forged or damaged): numbering starts over after ${start}`);
      await this.trash([...folders.filter((v) => v > TRUSTED_VERSION_LIMIT).map(String), ...oversized]);
      await this.persist(start);
      this.last = Math.max(this.last <= TRUSTED_VERSION_LIMIT ? this.last : 0, start);
    } else {
      this.last = Math.max(this.last, found);
    }
    this.opened = true;
    return this.last;
  }

  /** Hands out the next version, persisted (atomically) before it is returned. */
  async next(): Promise<number> {
    if (!this.opened) {
      await this.open();
    }
    const version = this.last + 1;
    if (version > MAX_VERSION) {
      throw new RangeError(`the version counter reached its maximum (${MAX_VERSION}); restart the service to number versions again`);
    }
    await this.persist(version);
    this.last = version;
    return version;
  }

  /**
   * Takes back `version`, the last one {@link next} handed out, when it was never used (its
   * image was refused): the next publish gets it again, even when the counter cannot be written
   * back (a full disk): `next` writes it before handing it out, and a crash only skips it.
   * Nothing when another was handed out since.
   */
  async giveBack(version: number): Promise<void> {
    if (version !== this.last) {
      return;
    }
    this.last = version - 1;
    await this.persist(version - 1).catch((err: Error) => this.logger.debug(`the version counter could not be written back to ${version - 1}: ${err.message}`));
  }

  /**
   * Moves the counter up to at least `version` (a version taken elsewhere, e.g. a shared
   * counter): later calls to {@link next} go above it. Never moves it down.
   */
  async advanceTo(version: number): Promise<void> {
    if (!Number.isSafeInteger(version) || version < 0 || version > MAX_VERSION) {
      throw new RangeError(`version must be an integer ≥ 0 and ≤ ${MAX_VERSION}, got ${String(version)}`);
    }
    if (version > this.last) {
      await this.persist(version);
      this.last = version;
    }
  }

  /** Renames version folders to `.trash-*` names, which the next prune removes. */
  private async trash(names: string[]): Promise<void> {
    for (const v of names) {
      const from = join(this.webFolder, VERSIONS_FOLDER, v);
      await rename(from, join(this.webFolder, VERSIONS_FOLDER, `.trash-${v}-${randomBytes(6).toString('hex')}`)).catch(() => undefined);
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

/** Folder names of versions beyond {@link MAX_VERSION} (16 digits or more), left by an older build or forged. */
async function listOversized(webFolder: string): Promise<string[]> {
  const names = await readdir(join(webFolder, VERSIONS_FOLDER)).catch(() => [] as string[]);
  return names.filter((n) => /^[1-9][0-9]{12,}$/.test(n));
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
  // A damaged file must not restart the numbering at 1: the folders still count. Past
  // MAX_VERSION it counts as over the trusted limit (numbering starts over, with a warning).
  return isVersionName(value) ? Number(value) : /^[1-9][0-9]{12,}$/.test(value) ? Number.MAX_SAFE_INTEGER : 0;
}
