import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { isThisMachine } from '../shared/http-limits/connection-limits.js';
import type { RefusalLog } from '../shared/http-limits/refusal-log.js';

/** ws's `verifyClient` callback. */
type VerifyDone = (result: boolean, code?: number, message?: string, headers?: Record<string, string | number>) => void;

/** Limits on `/ws` upgrades (see README, "Limits and hardening"). */
export interface ViewerLimits {
  /** Viewers connected in all. */
  maxViewers: number;
  /** Viewers connected from one address (a phone holds one; a family behind one NAT a few). */
  maxViewersPerAddress: number;
  /** Upgrades one address may make in a burst (the token bucket's size). */
  upgradeBurst: number;
  /** Upgrades per second one address regains after the burst. */
  upgradesPerSecond: number;
}

/** An upgrade refused before the handshake: the HTTP status, message and headers ws writes. */
export interface UpgradeRefusal {
  code: 429 | 503;
  message: string;
  headers: Record<string, string>;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Decides each `/ws` upgrade before the handshake: a token bucket per address (a client
 * reconnecting in a loop costs one refusal line, not a handshake each), and viewer counts
 * in all and per address, kept from the sockets themselves so a failed handshake cannot leak a slot.
 * Per-address limits spare this machine (see `isThisMachine`).
 */
export class UpgradeLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perAddress = new Map<string, number>();
  /** Each counted socket and its address, until it closes. */
  private readonly counted = new Map<Socket, string>();
  /** One 'close' listener for every counted socket (`this` is the socket), not a closure each. */
  private readonly onSocketClose: (this: Socket) => void;

  constructor(
    private readonly limits: ViewerLimits,
    private readonly log: RefusalLog,
  ) {
    const release = (socket: Socket): void => this.release(socket);
    this.onSocketClose = function (this: Socket) {
      release(this);
    };
  }

  /** Viewers counted now. */
  get viewers(): number {
    return this.counted.size;
  }

  /**
   * A ws `verifyClient` answer: 503 while `open()` is false (stopped), else {@link admit}'s
   * (last: an admitted upgrade is counted).
   */
  verify(open: () => boolean): (info: { req: IncomingMessage }, done: VerifyDone) => void {
    return (info, done) => {
      if (!open()) {
        done(false, 503, 'Service Unavailable');
        return;
      }
      const refusal = this.admit(info.req);
      if (refusal === undefined) {
        done(true);
      } else {
        done(false, refusal.code, refusal.message, refusal.headers);
      }
    };
  }

  /** Undefined when the upgrade may go ahead (and is then counted), else why not. */
  admit(req: IncomingMessage): UpgradeRefusal | undefined {
    const address = req.socket.remoteAddress ?? '?';
    const local = isThisMachine(address);
    const waitSeconds = local ? 0 : this.take(address);
    if (waitSeconds > 0) {
      const retry = String(Math.ceil(waitSeconds));
      this.log.refused('upgrade', address, `over ${this.limits.upgradeBurst} upgrades then ${this.limits.upgradesPerSecond}/s (rate-limited)`);
      return { code: 429, message: 'Too many connection attempts: try again later', headers: { 'Retry-After': retry } };
    }
    if (this.counted.size >= this.limits.maxViewers) {
      this.log.refused('upgrade', address, `${this.counted.size} viewers connected, the limit is ${this.limits.maxViewers}`);
      return { code: 503, message: 'Too many viewers: try again later', headers: { 'Retry-After': '30' } };
    }
    const mine = this.perAddress.get(address) ?? 0;
    if (mine >= this.limits.maxViewersPerAddress && !local) {
      this.log.refused('upgrade', address, `${mine} viewers connected from this address, the limit is ${this.limits.maxViewersPerAddress}`);
      return { code: 503, message: 'Too many viewers from this address', headers: { 'Retry-After': '30' } };
    }
    this.count(req.socket, address);
    return undefined;
  }

  private count(socket: Socket, address: string): void {
    if (this.counted.has(socket)) {
      return;
    }
    this.counted.set(socket, address);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    // 'close' is emitted once per socket.
    socket.on('close', this.onSocketClose);
  }

  private release(socket: Socket): void {
    const address = this.counted.get(socket);
    if (address === undefined) {
      return;
    }
    this.counted.delete(socket);
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left <= 0) {
      this.perAddress.delete(address);
    } else {
      this.perAddress.set(address, left);
    }
  }

  /** Takes a token; 0 when there was one, else the seconds until the next. */
  private take(address: string): number {
    const now = performance.now();
    const { upgradeBurst, upgradesPerSecond } = this.limits;
    const bucket = this.buckets.get(address) ?? { tokens: upgradeBurst, at: now };
    bucket.tokens = Math.min(upgradeBurst, bucket.tokens + ((now - bucket.at) / 1000) * upgradesPerSecond);
    bucket.at = now;
    this.buckets.set(address, bucket);
    if (this.buckets.size > 10_000) {
      this.prune(now);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / upgradesPerSecond;
  }

  /** Full buckets carry no state worth keeping. */
  private prune(now: number): void {
    for (const [address, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.limits.upgradesPerSecond >= this.limits.upgradeBurst) {
        this.buckets.delete(address);
      }
    }
  }
}
