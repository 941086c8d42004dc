import type { Logger } from '@nestjs/common';

/**
 * Logs refusals (connection caps, upgrade rate, upload slots) without letting a visitor
 * flood the log: the first refusal of a kind for an address is logged at once, the
 * following ones are counted and summed up at most once per `intervalMs`.
 */
export class RefusalLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  refused(kind: string, address: string, detail: string): void {
    const key = `${kind} ${address}`;
    const now = performance.now();
    const entry = this.last.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed += 1;
      return;
    }
    const more = entry !== undefined && entry.suppressed > 0 ? ` (${entry.suppressed} more since the last line)` : '';
    this.logger.warn(`refused ${kind} from ${address}: ${detail}${more}`);
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > 10_000) {
      // A sweep of many source addresses must not grow this map without bound.
      for (const [k, v] of this.last) {
        if (now - v.at >= this.intervalMs) {
          this.last.delete(k);
        }
      }
    }
  }
}
