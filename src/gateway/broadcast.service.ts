import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { SocketHeartbeat } from '../common/socket-heartbeat.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../config/image-server-options.js';
import { MetricsService } from '../modules/metrics/metrics.service.js';
import type { ServerMessage } from './server-message.js';

/** Text frames; nothing to compress in a few bytes. Shared: ws copies what it is given. */
const SEND_OPTIONS = { binary: false, compress: false } as const;

/** What one broadcast did. */
export interface BroadcastResult {
  sent: number;
  /** Clients dropped because their unsent backlog was over the bound, or their send failed. */
  dropped: number;
}

/**
 * Owns the set of connected viewers and sends messages to all of them. Each send is
 * isolated: a slow or broken client is dropped, never allowed to delay the others.
 * The gateway adds a client on connection and removes it on disconnect; the ws adapter
 * handles client errors.
 */
@Injectable()
export class BroadcastService implements OnApplicationShutdown {
  private readonly logger = new Logger(BroadcastService.name);
  /** Each open client, pinged by one heartbeat; one that stops answering is dropped. */
  private readonly clients: SocketHeartbeat;
  private readonly emptyWaiters = new Set<() => void>();
  /** Closed from the disconnect of a STOP until the next START. */
  private gateOpen = true;
  private readonly watchers = new Set<() => void>();

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly metrics: MetricsService,
  ) {
    metrics.gauge('stackcast_viewers_connected', 'Viewers connected to /ws on this process', () => this.clients.size);
    this.clients = new SocketHeartbeat(options.heartbeatIntervalMs, this.logger, (client, why) => {
      this.remove(client);
      if (why === 'silent') {
        this.metrics.recordDropped();
      }
    });
  }

  get count(): number {
    return this.clients.size;
  }

  /**
   * Calls `listener` after a viewer came or went and after each `new_image` (the scopes'
   * lobby follows these). Returns the function that stops it.
   */
  watch(listener: () => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  private changed(): void {
    for (const listener of this.watchers) {
      listener();
    }
  }

  add(client: WebSocket): void {
    this.clients.add(client);
    this.changed();
  }

  remove(client: WebSocket): void {
    if (!this.clients.delete(client)) {
      return;
    }
    this.changed();
    if (this.clients.size === 0) {
      for (const resolve of this.emptyWaiters) {
        resolve();
      }
      this.emptyWaiters.clear();
    }
  }

  /** After STOP's disconnect: further broadcasts are not sent to the clients told to leave. */
  close(): void {
    this.gateOpen = false;
  }

  /** At START: broadcasts go out again. */
  open(): void {
    this.gateOpen = true;
  }

  /**
   * Sends `message` to every open client; serialized once, sent as a text frame. While
   * the gate is closed (STOP), only `disconnect` goes out.
   */
  broadcast(message: ServerMessage): BroadcastResult {
    if (!this.gateOpen && message.type !== 'disconnect') {
      return { sent: 0, dropped: 0 };
    }
    const began = performance.now();
    const frame = Buffer.from(JSON.stringify(message));
    let sent = 0;
    let dropped = 0;
    for (const client of this.clients.keys()) {
      const outcome = this.deliver(client, frame);
      if (outcome === 'sent') {
        sent++;
      } else if (outcome === 'dropped') {
        dropped++;
      }
    }
    if (dropped > 0) {
      this.logger.warn(`dropped ${dropped} client(s) that stopped reading`);
    }
    this.metrics.recordBroadcast((performance.now() - began) / 1000, dropped);
    if (message.type === 'new_image') {
      this.changed();
    }
    return { sent, dropped };
  }

  /**
   * Sends `message` to one client, with the same backlog bound and gate as a broadcast.
   * True when it was sent.
   */
  sendTo(client: WebSocket, message: ServerMessage): boolean {
    if ((!this.gateOpen && message.type !== 'disconnect') || !this.clients.has(client)) {
      return false;
    }
    const dropped = this.deliver(client, Buffer.from(JSON.stringify(message))) === 'dropped';
    if (dropped) {
      this.logger.warn('dropped 1 client that stopped reading');
    }
    return !dropped && client.readyState === WebSocket.OPEN;
  }

  /** Resolves true once every client is gone, or false after `timeoutMs`. */
  waitUntilEmpty(timeoutMs: number): Promise<boolean> {
    if (this.clients.size === 0) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.emptyWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.emptyWaiters.add(done);
    });
  }

  /** Ends every connection at once, without a close handshake. */
  terminateAll(): number {
    const n = this.clients.size;
    for (const client of [...this.clients.keys()]) {
      client.terminate();
      this.remove(client);
    }
    return n;
  }

  /** After the STOP of a shutdown and the close of every socket. */
  onApplicationShutdown(): void {
    this.clients.stop();
  }

  /** One isolated send: a client over the backlog bound, or whose send throws, is terminated. */
  private deliver(client: WebSocket, frame: Buffer): 'sent' | 'dropped' | 'skipped' {
    if (client.readyState !== WebSocket.OPEN) {
      return 'skipped';
    }
    if (client.bufferedAmount > this.options.maxClientBacklogBytes) {
      // A phone that went to sleep stops reading; buffering for it without limit
      // would grow the server's memory with every image.
      client.terminate();
      return 'dropped';
    }
    try {
      client.send(frame, SEND_OPTIONS);
      return 'sent';
    } catch (err) {
      this.logger.debug(`send failed: ${(err as Error).message}`);
      client.terminate();
      return 'dropped';
    }
  }
}
