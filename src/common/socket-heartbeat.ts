import type { Logger } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { guarded } from './guarded.js';

/**
 * Sockets pinged per turn of the event loop: a beat over thousands of phones is spread over
 * several turns rather than one (5000 pings at once held the loop about 60 ms, every beat).
 */
export const PING_SLICE = 250;

/**
 * The open sockets of one endpoint, kept honest by the ws README's heartbeat ("How to detect
 * and close broken connections?"): one timer for all of them pings each socket every
 * `intervalMs` ({@link PING_SLICE} sockets per turn of the event loop); one that did not
 * answer the last ping, or whose ping throws, is terminated and handed to `onDead`. The timer
 * runs only while a socket is in the set (`intervalMs` ≤ 0: never).
 */
export class SocketHeartbeat {
  /** Each socket, and whether it answered the last ping. */
  private readonly alive = new Map<WebSocket, boolean>();
  private timer: NodeJS.Timeout | undefined;
  /** The beat under way, if its sockets are not all pinged yet. */
  private beating: Beat | undefined;
  /** One listener for every socket (no closure per socket: thousands of phones). */
  private readonly onPong: (this: WebSocket) => void;
  private readonly beat: () => void;
  private readonly goOn: () => void;

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
    this.beat = guarded(logger, 'the heartbeat failed', () => {
      // A tick while a beat is still under way (thousands of sockets, a short interval) lets it go on.
      if (!this.beating) {
        this.beating = { sockets: [...this.alive.keys()], next: 0 };
        this.pingSlice(this.beating);
      }
    });
    this.goOn = guarded(logger, 'the heartbeat failed', () => {
      // Not once stopped.
      if (this.beating) {
        this.pingSlice(this.beating);
      }
    });
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

  /** Stops the timer and the beat under way (shutdown); the next {@link add} starts it again. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.beating = undefined;
  }

  /**
   * Pings the next {@link PING_SLICE} sockets of the beat, then goes on in the next turn of the
   * event loop until every socket it began with is done. A socket that left the set meanwhile
   * is skipped; one that came is pinged in the next beat (it counts as having answered).
   */
  private pingSlice(beat: Beat): void {
    const end = Math.min(beat.next + PING_SLICE, beat.sockets.length);
    try {
      while (beat.next < end) {
        // Counted first: a socket whose handling throws is not tried again by the next slice.
        const socket = beat.sockets[beat.next++];
        const answered = this.alive.get(socket);
        if (answered === undefined) {
          continue;
        }
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
    } finally {
      if (beat.next < beat.sockets.length) {
        setImmediate(this.goOn);
      } else if (this.beating === beat) {
        this.beating = undefined;
      }
    }
  }
}

/** One beat of the heartbeat: the sockets it pings, in order, and the next one. */
interface Beat {
  sockets: WebSocket[];
  next: number;
}
