import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { WebSocket } from 'ws';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../config/image-server-options.js';
import type { ServerMessage } from './server-message.js';

interface ClientState {
  /** Cleared at each heartbeat, set again by the client's pong. */
  alive: boolean;
}

/** What one broadcast did. */
export interface BroadcastResult {
  sent: number;
  /** Clients dropped because their unsent backlog was over the bound, or their send failed. */
  dropped: number;
}

/**
 * Owns the set of connected viewers and sends messages to all of them. Each send is
 * isolated: a slow or broken client is dropped, never allowed to delay the others.
 */
@Injectable()
export class BroadcastService implements OnModuleDestroy {
  private readonly logger = new Logger(BroadcastService.name);
  private readonly clients = new Map<WebSocket, ClientState>();
  private readonly emptyWaiters = new Set<() => void>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(@Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions) {}

  get count(): number {
    return this.clients.size;
  }

  add(client: WebSocket): void {
    this.clients.set(client, { alive: true });
    client.on('pong', () => {
      const state = this.clients.get(client);
      if (state) {
        state.alive = true;
      }
    });
    // A client error (bad frame, oversized frame) ends that client only; ws closes it.
    client.on('error', (err) => this.logger.debug(`client error: ${err.message}`));
    client.once('close', () => this.remove(client));
    this.ensureHeartbeat();
  }

  remove(client: WebSocket): void {
    if (!this.clients.delete(client)) {
      return;
    }
    if (this.clients.size === 0) {
      for (const resolve of this.emptyWaiters) {
        resolve();
      }
      this.emptyWaiters.clear();
    }
  }

  /** Sends `message` to every open client; serialized once, sent as a text frame. */
  broadcast(message: ServerMessage): BroadcastResult {
    const frame = Buffer.from(JSON.stringify(message));
    let sent = 0;
    let dropped = 0;
    for (const client of this.clients.keys()) {
      if (client.readyState !== WebSocket.OPEN) {
        continue;
      }
      if (client.bufferedAmount > this.options.maxClientBacklogBytes) {
        // A phone that went to sleep stops reading; buffering for it without limit
        // would grow the server's memory with every image.
        client.terminate();
        dropped++;
        continue;
      }
      try {
        client.send(frame, { binary: false, compress: false });
        sent++;
      } catch (err) {
        this.logger.debug(`send failed: ${(err as Error).message}`);
        client.terminate();
        dropped++;
      }
    }
    if (dropped > 0) {
      this.logger.warn(`dropped ${dropped} client(s) that stopped reading`);
    }
    return { sent, dropped };
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

  onModuleDestroy(): void {
    this.stopHeartbeat();
  }

  stopHeartbeat(): void {
    if (this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  private ensureHeartbeat(): void {
    if (this.heartbeat || this.options.heartbeatIntervalMs <= 0) {
      return;
    }
    // One timer for all clients (ws README, "How to detect and close broken connections").
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  private beat(): void {
    for (const [client, state] of this.clients) {
      if (!state.alive) {
        client.terminate();
        this.remove(client);
        continue;
      }
      state.alive = false;
      try {
        client.ping();
      } catch {
        client.terminate();
        this.remove(client);
      }
    }
    if (this.clients.size === 0) {
      this.stopHeartbeat();
    }
  }
}
