import { open } from 'node:fs/promises';

/** Below this, a body's first-touch page faults cost too little to keep memory warm for it. */
export const MIN_WARM_BYTES = 1024 * 1024;

/**
 * Warm memory is this much larger than the upload it was made after: a stacker's next JPEG is
 * a little larger or smaller than the last (its noise, its stars), rarely by a quarter.
 */
const HEADROOM = 1.25;

/** Warm memory serves a body of at least 1/MAX_SLACK of its size: it never holds much more than the body. */
const MAX_SLACK = 1.5;

/**
 * How long after an upload no other may begin for memory to be warmed: uploads back to back
 * would take it before it is ready, and touching it would only add to their work.
 */
export const QUIET_MS = 250;

/** Bytes of zeros read per call: a few milliseconds of one of libuv's threads. */
const TOUCH_SLICE = 1024 * 1024;

/**
 * The memory the next big upload is read into, its pages touched before it comes: fresh
 * memory's first-touch page faults were most of a big upload, on the event loop
 * (docs/benchmarks.md, "Warm upload memory"). Handed over for good, never taken back or
 * reused. One per process, for every scope: memory is the process's, and so is the cost.
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
   * less than {@link MAX_SLACK} times it, shared as asked) and is touched, handed over and
   * forgotten; otherwise fresh memory. Memory still being touched is never handed over: a
   * read of zeros may be writing into it. `shared`: memory the pixel worker reads in place.
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
   * After a body was published: makes memory warm for the next one like it (about its size,
   * shared if it was: a FITS, which the pixel worker reads in place) once no upload began for
   * a quiet moment, unless warm memory that fits it is there already or it is small. Resolves
   * once it is touched or called off (tests; nobody needs to wait for it). Never rejects.
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

  /** Warm memory ready for a body of `length` bytes: all its pages touched, of a size and sharedness that fit. */
  isWarmFor(length: number, { shared }: { shared: boolean }): boolean {
    return this.touched && this.isFor(length, shared);
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
    // A failure costs the warm memory, nothing else: the next upload gets fresh memory.
    this.warming = this.touch(memory).then(
      (whole) => this.settle(memory, whole),
      () => this.settle(memory, false),
    );
    return this.warming;
  }

  /** Ready when every page was touched; otherwise let go (never half-ready memory kept). */
  private settle(memory: ArrayBuffer | SharedArrayBuffer, whole: boolean): void {
    if (this.warm === memory) {
      this.touched = whole;
      this.warm = whole ? memory : undefined;
    }
  }

  /**
   * Touches every page on libuv's threads, not the event loop: reading /dev/zero into memory
   * makes the kernel write each page. A slice at a time; stops once the memory is replaced.
   * Resolves whether every page was touched (without /dev/zero, not Linux: none).
   */
  private async touch(memory: ArrayBuffer | SharedArrayBuffer): Promise<boolean> {
    const zeros = await open('/dev/zero', 'r').catch(() => undefined);
    if (zeros === undefined) {
      return false;
    }
    try {
      const pages = new Uint8Array(memory);
      for (let at = 0; at < pages.length; ) {
        if (this.warm !== memory) {
          return false;
        }
        const { bytesRead } = await zeros.read(pages, at, Math.min(TOUCH_SLICE, pages.length - at), null);
        if (bytesRead === 0) {
          return false;
        }
        at += bytesRead;
      }
      return true;
    } finally {
      await zeros.close().catch(() => undefined);
    }
  }

  private callOffWaiting(): void {
    if (this.waiting) {
      clearTimeout(this.waiting.timer);
      this.waiting.callOff();
      this.waiting = undefined;
    }
  }

  private isFor(length: number, shared: boolean): boolean {
    const warm = this.warm;
    return warm !== undefined && warm.byteLength >= length && warm.byteLength < MAX_SLACK * length && warm instanceof SharedArrayBuffer === shared;
  }
}

/** The process's one {@link UploadMemory}: the upload controller of every scope reads into it. */
export const uploadMemory = new UploadMemory();
