import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { SocketHeartbeat } from '../../common/socket-heartbeat.js';
import { ViewerGate } from '../../shared/viewer-gate/viewer-gate.js';
import { ScopesService } from '../scopes/scopes.service.js';

/** Changes are sent at most this often; viewer counts and the rest are compared this often too. */
export const LOBBY_INTERVAL_MS = 1000;
/** Timers fire a little early or late: a comparison this close to a second after the last one is on time. */
const TIMER_SLACK_MS = 50;
/** A lobby socket that answers no ping for this long is dropped. */
const HEARTBEAT_MS = 30_000;
/** A client that has not read this much of what was sent is dropped rather than buffered for. */
const MAX_BUFFERED_BYTES = 1 << 20;
const SEND_OPTIONS = { binary: false, compress: false } as const;

/**
 * The lobby's and the wall's sockets (`/scopes/ws`): each gets `{"type":"scopes","scopes":[...]}`
 * ({@link ScopesService.listFresh}) on connect, then again whenever the list differs from the
 * last one sent: compared when the scopes service says something changed, at most once a
 * second ({@link LOBBY_INTERVAL_MS}), and every second anyway (viewer counts), only while a
 * socket is open. While stopped, the sockets are closed (the pages reconnect).
 */
@Injectable()
export class LobbyFeed implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LobbyFeed.name);
  /** Each open socket; one that stops answering pings is terminated (its close removes it). */
  private readonly clients = new SocketHeartbeat(HEARTBEAT_MS, this.logger, () => undefined);
  private lastSent = '';
  private tick: NodeJS.Timeout | undefined;
  private comparing = false;
  private lastCompared = 0;
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly scopes: ScopesService,
    private readonly gate: ViewerGate,
  ) {}

  get count(): number {
    return this.clients.size;
  }

  /** A new socket: the list now, then its changes. */
  add(client: WebSocket): void {
    this.clients.add(client);
    this.start();
    void this.compare(client);
  }

  remove(client: WebSocket): void {
    this.clients.delete(client);
    if (this.clients.size === 0) {
      this.stop();
    }
  }

  onModuleInit(): void {
    this.unwatch = this.scopes.watch(() => this.changed());
  }

  onApplicationShutdown(): void {
    this.unwatch?.();
    this.stop();
  }

  /** Something changed: compared now, or at the next tick when the last comparison is under a second old. */
  private changed(): void {
    if (this.clients.size > 0 && performance.now() - this.lastCompared >= LOBBY_INTERVAL_MS - TIMER_SLACK_MS) {
      void this.compare();
    }
  }

  private start(): void {
    if (this.clients.size === 0 || this.tick) {
      return;
    }
    this.tick = setInterval(() => {
      // Not right after a comparison a change asked for: at most one message a second.
      if (performance.now() - this.lastCompared >= LOBBY_INTERVAL_MS - TIMER_SLACK_MS) {
        void this.compare();
      }
    }, LOBBY_INTERVAL_MS);
    this.tick.unref();
  }

  private stop(): void {
    clearInterval(this.tick);
    this.tick = undefined;
    this.clients.stop();
  }

  /** Sends the list to every socket when it changed, else to `joined` alone (a new socket) if given. */
  private async compare(joined?: WebSocket): Promise<void> {
    if (!this.gate.acceptsViewers) {
      for (const client of this.clients.keys()) {
        client.close(1001, 'stackcast is stopped');
      }
      return;
    }
    if (this.comparing && !joined) {
      return;
    }
    this.comparing = true;
    this.lastCompared = performance.now();
    try {
      const text = JSON.stringify({ type: 'scopes', scopes: await this.scopes.listFresh() });
      if (text !== this.lastSent) {
        this.lastSent = text;
        for (const client of this.clients.keys()) {
          this.send(client, text);
        }
      } else if (joined) {
        this.send(joined, text);
      }
    } catch (err) {
      this.logger.warn(`scopes list: ${String(err)}`);
    } finally {
      this.comparing = false;
    }
  }

  /** Isolated: one slow or broken client is dropped, never allowed to hold the others. */
  private send(client: WebSocket, text: string): void {
    if (client.readyState !== WebSocket.OPEN) {
      return;
    }
    if (client.bufferedAmount > MAX_BUFFERED_BYTES) {
      client.terminate();
      return;
    }
    client.send(text, SEND_OPTIONS, (err) => {
      if (err) {
        client.terminate();
      }
    });
  }
}
