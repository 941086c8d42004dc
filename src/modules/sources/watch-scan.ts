import type { Stats } from 'node:fs';
import { extname } from 'node:path';

/** Extensions of the images a watched folder is searched for (any case). */
export const WATCHED_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.tif', '.tiff'];

/** A file that may be published: where it is and what it looked like when seen. */
export interface WatchCandidate {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
  /** Same file, same content as far as stat can tell; survives a rename (inode, size, mtime). */
  signature: string;
}

/**
 * An image a stacker could have written: a known image extension, and not a hidden
 * file (editors', rsync's and our own temp files start with a dot).
 */
export function isWatchedImageName(name: string): boolean {
  return !name.startsWith('.') && WATCHED_EXTENSIONS.includes(extname(name).toLowerCase());
}

export function candidateOf(path: string, name: string, stats: Stats): WatchCandidate {
  return {
    path,
    name,
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    // The change time is left out on purpose: a rename into place changes it, not the content.
    signature: `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}`,
  };
}

/** The newest file by modification time; on a tie (coarse clocks of FAT or SMB) the last name, as stackers number their output. */
export function pickNewest(candidates: readonly WatchCandidate[]): WatchCandidate | undefined {
  let best: WatchCandidate | undefined;
  for (const c of candidates) {
    if (!best || c.mtimeMs > best.mtimeMs || (c.mtimeMs === best.mtimeMs && c.name > best.name)) {
      best = c;
    }
  }
  return best;
}
