import { open } from 'node:fs/promises';

/** Below this, a body's first-touch page faults cost too little to keep memory warm for it. */
export const MIN_WARM_BYTES = 1024 * 1024;

/**
 * Warm memory is this much larger than the upload it was made after: a stacker's next JPEG is
 * a little larger or smaller than the last (its noise, its stars), rarely by a quarter.
 */
const HEADROOM = 1.25;

/**
 * How long after an upload no other may begin for memory to be warmed: uploads back to back
 * (a queue of stacks) would take it before it is ready, and the touching would only add to
 * their work (docs/benchmarks.md).
 */
export const QUIET_MS = 250;

/** Bytes of zeros read per call: a few milliseconds of one of libuv's threads. */
const TOUCH_SLICE = 1024 * 1024;

/**
 * The memory the next big upload is read into, its pages touched before it arrives.
 *
 * Memory fresh from the kernel is mapped page by page on first write: for a 24 MB stack that is
 * 6000 page faults, paid on the event loop while the body is copied in, and the largest part of
 * its upload over loopback (docs/benchmarks.md, "Warm upload memory"). So after an upload, one
 * buffer of its size is allocated and touched off the event loop and the publish's path, once
 * no upload began for {@link QUIET_MS}; the next
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
  /** The warming waiting for a quiet moment, and what resolves its caller when it is called off. */
  private waiting: { timer: NodeJS.Timeout; callOff: () => void } | undefined;

  /** `quietMs`: see {@link QUIET_MS} (tests shorten it). */
  constructor(private readonly quietMs = QUIET_MS) {}

  /**
   * A buffer of `length` bytes for a body: the warm memory when it fits (at least `length`,
   * less than twice it, shared as asked) and is touched, handed over and forgotten; otherwise
   * fresh memory. Memory still being touched is never handed over: a read of zeros may be
   * writing into it. `shared`: memory the pixel worker can read in place.
   */
  take(length: number, { shared }: { shared: boolean }): Buffer {
    // An upload begins: no quiet moment for a warming still waiting.
    this.callOffWaiting();
    const warm = this.warm;
    if (warm !== undefined && this.isWarmFor(length, { shared })) {
      this.warm = undefined;
      this.touched = false;
      return Buffer.from(warm, 0, length);
    }
    return shared ? Buffer.from(new SharedArrayBuffer(length)) : Buffer.allocUnsafeSlow(length);
  }

  /**
   * After a body was read: makes memory warm for the next one like it (about its size, shared
   * if it was) once no upload began for a quiet moment, unless warm memory that fits it is
   * there already or it is small. Resolves once it is touched, or called off by an upload
   * (tests; nobody needs to wait for it).
   */
  prepareAfter(body: Buffer): Promise<void> {
    return this.prepare(body.length, { shared: body.buffer instanceof SharedArrayBuffer });
  }

  /** {@link prepareAfter} a body of `length` bytes, in shared memory or not. */
  prepare(length: number, { shared }: { shared: boolean }): Promise<void> {
    this.callOffWaiting();
    if (length < MIN_WARM_BYTES || this.isFor(length, shared)) {
      return this.warming;
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        void this.warmNow(length, shared).then(resolve);
      }, this.quietMs);
      // Never what keeps a process alive.
      timer.unref();
      this.waiting = { timer, callOff: resolve };
    });
  }

  private warmNow(length: number, shared: boolean): Promise<void> {
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

  private callOffWaiting(): void {
    if (this.waiting) {
      clearTimeout(this.waiting.timer);
      this.waiting.callOff();
      this.waiting = undefined;
    }
  }

  private isFor(length: number, shared: boolean): boolean {
    return this.warm !== undefined && fits(this.warm.byteLength, length) && this.warm instanceof SharedArrayBuffer === shared;
  }

  /**
   * Touches every page on libuv's threads, not the event loop: reading /dev/zero into memory
   * makes the kernel write each page there. A slice at a time; stops once the memory is
   * replaced. Without /dev/zero (not Linux), no memory is kept warm.
   */
  private async touch(memory: ArrayBuffer | SharedArrayBuffer): Promise<void> {
    const zeros = await open('/dev/zero', 'r').catch(() => undefined);
    if (zeros === undefined) {
      if (this.warm === memory) {
        this.warm = undefined;
      }
      return;
    }
    try {
      const pages = new Uint8Array(memory);
      for (let at = 0; at < pages.length; ) {
        if (this.warm !== memory) {
          return;
        }
        const { bytesRead } = await zeros.read(pages, at, Math.min(TOUCH_SLICE, pages.length - at), null);
        if (bytesRead === 0) {
          return;
        }
        at += bytesRead;
      }
      this.touched = this.warm === memory;
    } finally {
      await zeros.close();
    }
  }
}

/** Warm memory of `capacity` bytes serves a body of `length`, without holding much more than it. */
function fits(capacity: number, length: number): boolean {
  return capacity >= length && capacity < 2 * length;
}

/** The process's one {@link UploadMemory}: every upload controller, of every scope, reads into it. */
export const uploadMemory = new UploadMemory();
