import type { Stats } from 'node:fs';
import { extname } from 'node:path';

/** Extensions of the images a watched folder is searched for (any case): JPEG, PNG, TIFF and FITS. */
export const WATCHED_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.tif', '.tiff', '.fit', '.fits', '.fts'];

/**
 * Dot-separated parts that mark a temp file even when its name ends like an image:
 * `stack.tmp.tif`, `frame.part.jpg`, `live.TEMP.png`.
 */
const TEMP_NAME_PARTS = new Set(['tmp', 'temp', 'part', 'partial']);

/**
 * Siril's live stacking folder: `live_stack_00001.fit` is the stack (rewritten in place),
 * `live_stack_NNNNN.fit` with another number an input frame, `<prefix>_live_stack_*` a
 * processed copy of one (`r_` registered, `pp_` preprocessed).
 */
const SIRIL_LIVE_STACK = /^(?:([a-z0-9]+)_)?live_stack_(\d+)\.(?:fit|fits|fts)$/i;

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

/**
 * An image a stacker could have written: a known image extension, and not a temp or
 * hidden file, nor one of Siril's live-stacking input frames. Left out, so that a writer's
 * file in progress is never mistaken for its output even when it sits there longer than
 * the settle time:
 * - names starting with a dot (editors', rsync's and our own temp files);
 * - names containing `~` (backup and lock files: `~stack.tif`, `stack~.jpg`);
 * - names with a dot-separated part, after the first, that is `tmp`, `temp`, `part` or
 *   `partial` in any case (`stack.tmp.tif`: atomic writers that keep the extension);
 * - Siril's frames (see {@link isSirilLiveStackFrame}): only its stack is taken.
 * `tmp_stack.tif` or `temp.png` are taken: only a part between dots marks a temp file.
 */
export function isWatchedImageName(name: string): boolean {
  if (name.startsWith('.') || name.includes('~') || !WATCHED_EXTENSIONS.includes(extname(name).toLowerCase())) {
    return false;
  }
  const parts = name.toLowerCase().split('.');
  return !parts.slice(1, -1).some((part) => TEMP_NAME_PARTS.has(part)) && !isSirilLiveStackFrame(name);
}

/**
 * One of the frames Siril keeps beside its live stack: `live_stack_NNNNN.fit` with NNNNN
 * other than 00001 (the stack itself), or a prefixed copy (`r_live_stack_00002.fit`).
 */
export function isSirilLiveStackFrame(name: string): boolean {
  const match = SIRIL_LIVE_STACK.exec(name);
  return match !== null && (match[1] !== undefined || Number(match[2]) !== 1);
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
 * or SMB) the last name, as stackers number their output. Only for what a folder already
 * holds when the watch begins: later files are ordered by arrival.
 */
export function newestFirst(a: Pick<WatchCandidate, 'mtimeMs' | 'name'>, b: Pick<WatchCandidate, 'mtimeMs' | 'name'>): number {
  if (a.mtimeMs !== b.mtimeMs) {
    return b.mtimeMs - a.mtimeMs;
  }
  return a.name < b.name ? 1 : a.name > b.name ? -1 : 0;
}

/** The newest file by modification time; on a tie the last name. */
export function pickNewest<T extends Pick<WatchCandidate, 'mtimeMs' | 'name'>>(candidates: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const c of candidates) {
    if (!best || newestFirst(c, best) < 0) {
      best = c;
    }
  }
  return best;
}
