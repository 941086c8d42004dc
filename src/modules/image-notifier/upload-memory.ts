import { setImmediate as nextTurn } from 'node:timers/promises';

/** Below this, a body's first-touch page faults cost too little to keep memory warm for it. */
export const MIN_WARM_BYTES = 1024 * 1024;

/**
 * Warm memory is this much larger than the upload it was made after: a stacker's next JPEG is
 * a little larger or smaller than the last (its noise, its stars), rarely by a quarter.
 */
const HEADROOM = 1.25;

/** Pages touched per turn of the event loop: about a millisecond of page faults on a slow VM. */
const TOUCH_SLICE = 256 * 1024;
const PAGE = 4096;

/**
 * The memory the next big upload is read into, its pages touched before it arrives.
 *
 * Memory fresh from the kernel is mapped page by page on first write: for a 24 MB stack that is
 * 6000 page faults, paid on the event loop while the body is copied in, and the largest part of
 * its upload over loopback (docs/benchmarks.md, "Warm upload memory"). So after an upload, one
 * buffer of its size is allocated and touched a slice per turn, off the publish's path; the next
 * upload of about that size is read into it. It is handed over for good, never taken back or
 * reused: whoever reads the body owns it as they would a fresh buffer. One per process (memory
 * is the process's), shared by every scope: the bytes of the last upload, at most, sit idle.
 * Shared memory (which the pixel worker reads in place) only after a body that wanted it, a
 * FITS: a process holds shared memory longer than plain (docs/benchmarks.md).
 */
export class UploadMemory {
  private warm: ArrayBuffer | SharedArrayBuffer | undefined;
  /** Whether every page of {@link warm} has been touched (false while it is being touched). */
  private touched = false;
  private warming: Promise<void> = Promise.resolve();

  /**
   * A buffer of `length` bytes for a body: the warm memory when it fits (at least `length`,
   * less than twice it, shared as asked), handed over and forgotten; otherwise fresh memory.
   * `shared`: memory the pixel worker can read in place.
   */
  take(length: number, { shared }: { shared: boolean }): Buffer {
    const warm = this.warm;
    if (warm !== undefined && fits(warm.byteLength, length) && warm instanceof SharedArrayBuffer === shared) {
      this.warm = undefined;
      return Buffer.from(warm, 0, length);
    }
    return shared ? Buffer.from(new SharedArrayBuffer(length)) : Buffer.allocUnsafeSlow(length);
  }

  /**
   * After a body was read: makes memory warm for the next one like it (about its size, shared
   * if it was), unless warm memory that fits it is there already or it is small. Resolves once
   * it is touched (tests; nobody needs to wait for it).
   */
  prepareAfter(body: Buffer): Promise<void> {
    return this.prepare(body.length, { shared: body.buffer instanceof SharedArrayBuffer });
  }

  /** {@link prepareAfter} a body of `length` bytes, in shared memory or not. */
  prepare(length: number, { shared }: { shared: boolean }): Promise<void> {
    if (length < MIN_WARM_BYTES || this.isFor(length, shared)) {
      return this.warming;
    }
    let memory: ArrayBuffer | SharedArrayBuffer;
    try {
      const size = Math.ceil(length * HEADROOM);
      memory = shared ? new SharedArrayBuffer(size) : Buffer.allocUnsafeSlow(size).buffer;
    } catch {
      // Memory is short: the next upload allocates its own, as without warm memory.
      this.warm = undefined;
      return this.warming;
    }
    this.warm = memory;
    this.touched = false;
    this.warming = this.touch(memory);
    return this.warming;
  }

  /** Warm memory ready for a body of `length` bytes, all its pages touched (tests). */
  isWarmFor(length: number, { shared }: { shared: boolean }): boolean {
    return this.touched && this.isFor(length, shared);
  }

  private isFor(length: number, shared: boolean): boolean {
    return this.warm !== undefined && fits(this.warm.byteLength, length) && this.warm instanceof SharedArrayBuffer === shared;
  }

  /** Writes a zero into each page, a slice per turn; stops once the memory is taken or replaced. */
  private async touch(memory: ArrayBuffer | SharedArrayBuffer): Promise<void> {
    const pages = new Uint8Array(memory);
    for (let at = 0; at < pages.length; ) {
      await nextTurn();
      if (this.warm !== memory) {
        return;
      }
      for (const end = Math.min(pages.length, at + TOUCH_SLICE); at < end; at += PAGE) {
        pages[at] = 0;
      }
    }
    this.touched = this.warm === memory;
  }
}

/** Warm memory of `capacity` bytes serves a body of `length`, without holding much more than it. */
function fits(capacity: number, length: number): boolean {
  return capacity >= length && capacity < 2 * length;
}

/** The process's one {@link UploadMemory}: every upload controller, of every scope, reads into it. */
export const uploadMemory = new UploadMemory();
