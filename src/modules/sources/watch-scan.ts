import type { Stats } from 'node:fs';
import { extname } from 'node:path';

/** Extensions of the images a watched folder is searched for (any case). */
export const WATCHED_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.tif', '.tiff'];

/**
 * Dot-separated parts that mark a temp file even when its name ends like an image:
 * `stack.tmp.tif`, `frame.part.jpg`, `live.TEMP.png`.
 */
const TEMP_NAME_PARTS = new Set(['tmp', 'temp', 'part', 'partial']);

/** A file that may be published: where it is and what it looked like when seen. */
export interface WatchCandidate {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
  /** Which file this is (device and inode): a new one under the same name was put there by a rename. */
  identity: string;
  /** Same file, same content as far as stat can tell; survives a rename (inode, size, mtime). */
  signature: string;
}

/** What the watch last published or skipped: nothing at or before it is taken again. */
export interface HandledFile {
  name: string;
  signature: string;
  mtimeMs: number;
}

/**
 * An image a stacker could have written: a known image extension, and not a temp or
 * hidden file. Left out, so that a writer's file in progress is never mistaken for its
 * output even when it sits there longer than the settle time:
 * - names starting with a dot (editors', rsync's and our own temp files);
 * - names containing `~` (backup and lock files: `~stack.tif`, `stack~.jpg`);
 * - names with a dot-separated part, after the first, that is `tmp`, `temp`, `part` or
 *   `partial` in any case (`stack.tmp.tif`: atomic writers that keep the extension).
 * `tmp_stack.tif` or `temp.png` are taken: only a part between dots marks a temp file.
 */
export function isWatchedImageName(name: string): boolean {
  if (name.startsWith('.') || name.includes('~') || !WATCHED_EXTENSIONS.includes(extname(name).toLowerCase())) {
    return false;
  }
  const parts = name.toLowerCase().split('.');
  return !parts.slice(1, -1).some((part) => TEMP_NAME_PARTS.has(part));
}

export function candidateOf(path: string, name: string, stats: Stats): WatchCandidate {
  return {
    path,
    name,
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    identity: `${stats.dev}:${stats.ino}`,
    // The change time is left out on purpose: a rename into place changes it, not the content.
    signature: `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}`,
  };
}

/**
 * Sort order, newest first: the latest modification time; on a tie (coarse clocks of FAT
 * or SMB) the last name, as stackers number their output.
 */
export function newestFirst(a: Pick<WatchCandidate, 'mtimeMs' | 'name'>, b: Pick<WatchCandidate, 'mtimeMs' | 'name'>): number {
  if (a.mtimeMs !== b.mtimeMs) {
    return b.mtimeMs - a.mtimeMs;
  }
  return a.name < b.name ? 1 : a.name > b.name ? -1 : 0;
}

/** The newest file by modification time; on a tie the last name. */
export function pickNewest(candidates: readonly WatchCandidate[]): WatchCandidate | undefined {
  let best: WatchCandidate | undefined;
  for (const c of candidates) {
    if (!best || newestFirst(c, best) < 0) {
      best = c;
    }
  }
  return best;
}

/**
 * Whether `candidate` may still be published after `handled`: it comes later (newer, or
 * as new with a later name), or it is the same name rewritten within the clock's
 * resolution. The handled file itself, also under another name after a rename, is not
 * news; neither is an older file that comes back on top when newer ones are deleted.
 */
export function comesAfter(candidate: WatchCandidate, handled: HandledFile | undefined): boolean {
  if (!handled) {
    return true;
  }
  if (candidate.signature === handled.signature) {
    return false;
  }
  if (candidate.mtimeMs !== handled.mtimeMs) {
    return candidate.mtimeMs > handled.mtimeMs;
  }
  return candidate.name >= handled.name;
}

/** `fn` over `items`, at most `limit` at a time; results in the order of `items`. */
export async function mapWithLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}
