/**
 * Bounds the uploads handled at once: `inFlight` run, up to `queued` more wait for a
 * slot (their bodies unread, so they cost a socket and no memory), the rest are refused.
 */
export class UploadSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly inFlight: number,
    private readonly queued: number,
  ) {}

  /** Uploads running now. */
  get active(): number {
    return this.running;
  }

  /**
   * A release function once a slot is free, or undefined at once when the queue is full.
   * `cancelled` (the client went away while queued) gives the place up.
   */
  acquire(cancelled: Promise<void>): Promise<(() => void) | undefined> {
    if (this.running < this.inFlight) {
      this.running += 1;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.queued) {
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const grant = (): void => resolve(this.releaser());
      this.waiting.push(grant);
      void cancelled.then(() => {
        const at = this.waiting.indexOf(grant);
        if (at !== -1) {
          this.waiting.splice(at, 1);
          resolve(undefined);
        }
      });
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) {
        return;
      }
      released = true;
      const next = this.waiting.shift();
      if (next === undefined) {
        this.running -= 1;
      } else {
        next();
      }
    };
  }
}
