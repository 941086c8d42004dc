import type { Logger } from '@nestjs/common';

/** How long the same failure of one timer stays out of the log after it was logged. */
const REPEAT_AFTER_MS = 60_000;

/**
 * Wraps a timer's or a background task's body: what it throws is logged as
 * `<what>: <message>` (the same message at most once a minute) and goes no further, so a
 * failing tick (an EMFILE while the fd table is full) never ends the process.
 */
export function guarded(logger: Pick<Logger, 'warn'>, what: string, task: () => void): () => void {
  let last: { message: string; at: number } | undefined;
  return () => {
    try {
      task();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const now = performance.now();
      if (last === undefined || last.message !== message || now - last.at >= REPEAT_AFTER_MS) {
        logger.warn(`${what}: ${message}`);
        last = { message, at: now };
      }
    }
  };
}
