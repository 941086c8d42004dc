import type { Logger } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { guarded } from './guarded.js';

/**
 * The open sockets of one endpoint, kept honest by the ws README's heartbeat ("How to detect
 * and close broken connections?"): one timer for all of them pings each socket every
 * `intervalMs`; one that did not answer the last ping, or whose ping throws, is terminated and
 * handed to `onDead`. The timer runs only while a socket is in the set (`intervalMs` ≤ 0: never).
 */
export class SocketHeartbeat {
  /** Each socket, and whether it answered the last ping. */
  private readonly alive = new Map<WebSocket, boolean>();
  private timer: NodeJS.Timeout | undefined;
  /** One listener for every socket (no closure per socket: thousands of phones). */
  private readonly onPong: (this: WebSocket) => void;
  private readonly beat: () => void;

  constructor(
    private readonly intervalMs: number,
    logger: Pick<Logger, 'warn'>,
    /** A socket terminated by the heartbeat: `silent` (no pong) or `failed` (its ping threw). */
    private readonly onDead: (socket: WebSocket, why: 'silent' | 'failed') => void,
  ) {
    const alive = this.alive;
    this.onPong = function (this: WebSocket) {
      if (alive.has(this)) {
        alive.set(this, true);
      }
    };
    this.beat = guarded(logger, 'the heartbeat failed', () => this.ping());
  }

  get size(): number {
    return this.alive.size;
  }

  has(socket: WebSocket): boolean {
    return this.alive.has(socket);
  }

  keys(): IterableIterator<WebSocket> {
    return this.alive.keys();
  }

  add(socket: WebSocket): void {
    this.alive.set(socket, true);
    socket.on('pong', this.onPong);
    if (!this.timer && this.intervalMs > 0) {
      this.timer = setInterval(this.beat, this.intervalMs);
      this.timer.unref();
    }
  }

  /** False when it was not in the set. */
  delete(socket: WebSocket): boolean {
    const had = this.alive.delete(socket);
    if (this.alive.size === 0) {
      this.stop();
    }
    return had;
  }

  /** Stops the timer (shutdown); the next {@link add} starts it again. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private ping(): void {
    for (const [socket, answered] of this.alive) {
      if (!answered) {
        socket.terminate();
        this.onDead(socket, 'silent');
        continue;
      }
      this.alive.set(socket, false);
      try {
        socket.ping();
      } catch {
        socket.terminate();
        this.onDead(socket, 'failed');
      }
    }
  }
}
