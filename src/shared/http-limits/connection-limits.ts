import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ImageServerOptions } from '../../config/image-server-options.js';
import type { RefusalLog } from './refusal-log.js';

/** The HTTP server limits set at bind (see README, "Limits and hardening"); documented in the options. */
export type ConnectionLimits = Pick<
  ImageServerOptions,
  | 'maxConnections'
  | 'maxConnectionsPerAddress'
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'minReadBytesPerSecond'
  | 'slowClientWindowMs'
>;

/**
 * This machine: the stacker, the astronomer's browser, or a reverse proxy on it (where
 * every visitor has this address). Per-address caps do not apply to it; the totals do.
 */
export function isThisMachine(address: string): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/** How long a refused socket may stay silent before it is closed without an answer. */
const REFUSED_IDLE_MS = 500;

interface Tracked {
  address: string;
  openedAt: number;
  /** Over a cap: answered 503 on its first request, closed at the next sweep if it sends nothing. */
  refused: boolean;
  upgraded: boolean;
  windowStart?: number;
  windowSent?: number;
}

/** Bytes libuv still holds for the kernel: the progress of one big write is visible only there. */
function unsentBytes(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  return typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : socket.writableLength;
}

/**
 * Counts the server's sockets per source address and in all, refuses those over a cap
 * (their requests and upgrades get a 503 with `Retry-After`, idle ones are closed), closes
 * slow readers, and sets Node's HTTP timeouts on purpose. One instance per server.
 */
export class ConnectionGuard {
  private readonly sockets = new Map<Socket, Tracked>();
  private readonly perAddress = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly log: RefusalLog,
  ) {}

  /** Open sockets now (all, refused ones included). */
  get open(): number {
    return this.sockets.size;
  }

  attach(server: Server): void {
    server.headersTimeout = this.limits.headersTimeoutMs;
    server.requestTimeout = this.limits.requestTimeoutMs;
    server.keepAliveTimeout = this.limits.keepAliveTimeoutMs;
    server.on('connection', (socket: Socket) => this.track(socket));
    // Upgraded sockets are the viewers' WebSockets: ws bounds their backlog, not the sweep.
    server.on('upgrade', (req: IncomingMessage) => {
      const entry = this.sockets.get(req.socket);
      if (entry !== undefined) {
        entry.upgraded = true;
      }
    });
    const every = Math.max(50, Math.min(1000, this.limits.slowClientWindowMs / 4));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
    server.once('close', () => this.detach());
  }

  detach(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Why a request or upgrade on this socket is refused, or undefined. */
  refusal(req: IncomingMessage): string | undefined {
    const entry = this.sockets.get(req.socket);
    return entry?.refused === true ? 'too many connections' : undefined;
  }

  private track(socket: Socket): void {
    const address = socket.remoteAddress ?? '?';
    const count = (this.perAddress.get(address) ?? 0) + 1;
    this.perAddress.set(address, count);
    const entry: Tracked = { address, openedAt: performance.now(), refused: false, upgraded: false };
    if (this.sockets.size >= this.limits.maxConnections) {
      entry.refused = true;
      this.log.refused('connection', address, `${this.sockets.size} connections open, the limit is ${this.limits.maxConnections}`);
    } else if (count > this.limits.maxConnectionsPerAddress && !isThisMachine(address)) {
      entry.refused = true;
      this.log.refused('connection', address, `${count - 1} connections open from this address, the limit is ${this.limits.maxConnectionsPerAddress}`);
    }
    this.sockets.set(socket, entry);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left <= 0) {
        this.perAddress.delete(address);
      } else {
        this.perAddress.set(address, left);
      }
    });
  }

  private sweep(): void {
    const now = performance.now();
    const { minReadBytesPerSecond, slowClientWindowMs, headersTimeoutMs } = this.limits;
    for (const [socket, entry] of this.sockets) {
      if (entry.upgraded) {
        continue;
      }
      if (entry.refused && socket.bytesRead === 0 && now - entry.openedAt > REFUSED_IDLE_MS) {
        // A refused socket that sends nothing gets no 503 to read: close it now.
        socket.destroy();
        continue;
      }
      if (socket.bytesRead === 0 && now - entry.openedAt > headersTimeoutMs) {
        // Node checks headersTimeout only every 30 s; a socket that never spoke goes now.
        socket.destroy();
        continue;
      }
      if (socket.writableLength === 0) {
        entry.windowStart = undefined;
        continue;
      }
      const sent = socket.bytesWritten - unsentBytes(socket);
      if (entry.windowStart === undefined || entry.windowSent === undefined) {
        entry.windowStart = now;
        entry.windowSent = sent;
        continue;
      }
      const elapsed = now - entry.windowStart;
      if (elapsed < slowClientWindowMs) {
        continue;
      }
      const rate = ((sent - entry.windowSent) * 1000) / elapsed;
      if (rate < minReadBytesPerSecond) {
        this.log.refused('slow reader', entry.address, `read ${Math.round(rate)} B/s over ${Math.round(elapsed)} ms, the minimum is ${minReadBytesPerSecond} B/s; closed`);
        socket.destroy();
        continue;
      }
      entry.windowStart = now;
      entry.windowSent = sent;
    }
  }
}
