import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Subject, type Observable } from 'rxjs';
import type { WebSocket } from 'ws';
import { guarded } from '../common/guarded.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../config/image-server-options.js';
import { BroadcastService } from './broadcast.service.js';
import type { ServerMessage } from './server-message.js';
import { CURRENT_VERSION, type CurrentVersion } from '../modules/web-assets/current-version.js';

/** A connected viewer, as `GET /api/clients` and the events describe it. */
export interface ViewerInfo {
  /** Opaque session id, unique for the life of the process. */
  id: string;
  /** The peer's IP address as the server sees it (a reverse proxy's, behind one). */
  address: string;
  /** The browser's `User-Agent` header (at most 256 characters), or `''`. */
  userAgent: string;
  /** When the connection opened, ISO 8601. */
  connectedAt: string;
}

/** What a viewer sent: a JSON object with a string `type` (other fields as sent). */
export interface ClientMessage {
  type: string;
  [field: string]: unknown;
}

/** What STOP reported when `server.stopped` was emitted. */
export interface ServerStoppedReport {
  clients: number;
  terminated: number;
  durationMs: number;
}

/** Events of {@link ViewerSessions.events}. */
export type ViewerEvent =
  | { type: 'viewer.connected'; viewer: ViewerInfo }
  | { type: 'viewer.message'; viewer: ViewerInfo; message: ClientMessage }
  | { type: 'viewer.disconnected'; viewer: ViewerInfo }
  | { type: 'server.stopped'; report: ServerStoppedReport };

/** Optional provider (WebAssetsModule's): the version on disk now, so `hello` can carry it. */
export { CURRENT_VERSION };
export type CurrentVersionSource = CurrentVersion;

/** Largest client text frame read; a larger one is ignored (ws closes it past `maxClientFrameBytes`). */
export const MAX_CLIENT_MESSAGE_BYTES = 4096;
/** Token bucket per viewer: this many frames a second on average, bursts of `CLIENT_MESSAGE_BURST`. */
export const CLIENT_MESSAGES_PER_SECOND = 5;
export const CLIENT_MESSAGE_BURST = 10;
/** Dropped frames also drain at the rate above; a viewer whose excess passes this is disconnected. */
export const CLIENT_FLOOD_LIMIT = 40;
const MAX_USER_AGENT = 256;

/** A viewer's token bucket, made at its first frame: a full one is the same as none, and most viewers send nothing. */
interface RateBucket {
  tokens: number;
  /** Frames dropped by the rate limit, draining at the refill rate. */
  excess: number;
  refilledAt: number;
}

/** What is kept per viewer (thousands of them): flat, with the {@link ViewerInfo} made on demand. */
interface Session {
  readonly id: string;
  readonly address: string;
  readonly userAgent: string;
  /** `Date.now()` at the connection. */
  readonly connectedAt: number;
  rate: RateBucket | undefined;
  /** Disconnected for flooding; its remaining frames are ignored. */
  cut: boolean;
}

function infoOf(session: Session): ViewerInfo {
  return {
    id: session.id,
    address: session.address,
    userAgent: session.userAgent,
    connectedAt: new Date(session.connectedAt).toISOString(),
  };
}

/**
 * The `/ws` connections as viewer sessions: ids, the list, sending to one, dropping one,
 * the viewers' own messages, and the events an embedding app subscribes to. Also the one
 * periodic service that tells viewers how many are watching, while the server runs.
 */
@Injectable()
export class ViewerSessions implements OnApplicationShutdown {
  private readonly logger = new Logger(ViewerSessions.name);
  private readonly sessions = new Map<WebSocket, Session>();
  private readonly byId = new Map<string, WebSocket>();
  private readonly subject = new Subject<ViewerEvent>();
  private countTimer: NodeJS.Timeout | undefined;
  private lastCountSent = -1;
  /** One 'message' listener shared by every client; `this` is the socket. */
  readonly onClientFrame: (this: WebSocket, data: Buffer, isBinary: boolean) => void;

  /** Every session event, as it happens. Completes when the app shuts down. */
  readonly events: Observable<ViewerEvent> = this.subject.asObservable();

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly broadcaster: BroadcastService,
    @Optional() @Inject(CURRENT_VERSION) private readonly currentVersion?: CurrentVersionSource,
  ) {
    const receive = (client: WebSocket, data: Buffer, isBinary: boolean): void => this.receive(client, data, isBinary);
    this.onClientFrame = function (this: WebSocket, data: Buffer, isBinary: boolean) {
      receive(this, data, isBinary);
    };
  }

  /** The connected viewers, oldest first. */
  list(): ViewerInfo[] {
    return [...this.sessions.values()].map(infoOf);
  }

  /** Whether a viewer with this id is connected. */
  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Sends `message` to one viewer. False when the id is unknown or the send did not happen. */
  send(id: string, message: ServerMessage): boolean {
    const client = this.byId.get(id);
    return client !== undefined && this.broadcaster.sendTo(client, message);
  }

  /** Sends `message` to every viewer; returns how many it was sent to. */
  broadcast(message: ServerMessage): number {
    return this.broadcaster.broadcast(message).sent;
  }

  /**
   * Tells one viewer `{"type":"disconnect"}` and closes its connection; the others are
   * untouched. False when the id is unknown.
   */
  disconnect(id: string, reason = 'disconnected by the operator'): boolean {
    const client = this.byId.get(id);
    if (client === undefined) {
      return false;
    }
    this.broadcaster.sendTo(client, { type: 'disconnect' });
    // A viewer that ignores the close handshake is cut off by ws after its close timeout.
    client.close(1000, reason);
    return true;
  }

  /** The gateway's connection hook: gives the client an id and sends `hello`. */
  connected(client: WebSocket, request: IncomingMessage): ViewerInfo {
    // Only strings are read from the request, so nothing keeps it alive.
    const session: Session = {
      id: randomUUID(),
      address: request.socket.remoteAddress ?? '',
      userAgent: (request.headers['user-agent'] ?? '').slice(0, MAX_USER_AGENT),
      connectedAt: Date.now(),
      rate: undefined,
      cut: false,
    };
    this.sessions.set(client, session);
    this.byId.set(session.id, client);
    client.on('message', this.onClientFrame);
    const version = this.currentVersion?.();
    this.broadcaster.sendTo(client, {
      type: 'hello',
      id: session.id,
      ...(version === undefined ? {} : { version }),
      viewers: this.sessions.size,
    });
    this.subject.next({ type: 'viewer.connected', viewer: infoOf(session) });
    return infoOf(session);
  }

  /** The gateway's disconnect hook. */
  disconnected(client: WebSocket): void {
    const session = this.sessions.get(client);
    if (session === undefined) {
      return;
    }
    this.sessions.delete(client);
    this.byId.delete(session.id);
    client.off('message', this.onClientFrame);
    this.subject.next({ type: 'viewer.disconnected', viewer: infoOf(session) });
  }

  /** START done: the viewer-count service runs while the server does. */
  serverStarted(): void {
    if (this.countTimer) {
      return;
    }
    this.lastCountSent = -1;
    this.countTimer = setInterval(guarded(this.logger, 'telling the viewer count failed', () => this.tellCount()), this.options.viewerCountIntervalMs);
    this.countTimer.unref();
  }

  /** STOP done (a command, a signal or the app closing). */
  serverStopped(report: ServerStoppedReport): void {
    this.stopCountTimer();
    this.subject.next({ type: 'server.stopped', report: { ...report } });
  }

  onApplicationShutdown(): void {
    this.stopCountTimer();
    this.subject.complete();
  }

  private stopCountTimer(): void {
    if (this.countTimer) {
      clearInterval(this.countTimer);
      this.countTimer = undefined;
    }
  }

  private tellCount(): void {
    const count = this.sessions.size;
    if (count === this.lastCountSent) {
      return;
    }
    this.lastCountSent = count;
    if (count > 0) {
      this.broadcaster.broadcast({ type: 'viewers', count });
    }
  }

  private receive(client: WebSocket, data: Buffer, isBinary: boolean): void {
    const session = this.sessions.get(client);
    if (session === undefined || session.cut) {
      return;
    }
    const rate = (session.rate ??= { tokens: CLIENT_MESSAGE_BURST, excess: 0, refilledAt: performance.now() });
    if (!this.admit(rate)) {
      if (rate.excess > CLIENT_FLOOD_LIMIT) {
        // Frames already received still arrive after terminate(): `cut` ignores them.
        session.cut = true;
        this.logger.warn(`viewer ${session.id} (${session.address}) flooded its socket: disconnected`);
        client.terminate();
      }
      return;
    }
    if (isBinary || data.length > MAX_CLIENT_MESSAGE_BYTES) {
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return;
    }
    if (typeof (message as { type?: unknown }).type !== 'string') {
      return;
    }
    this.subject.next({ type: 'viewer.message', viewer: infoOf(session), message: message as ClientMessage });
  }

  /** Token bucket: true when this frame may be read. */
  private admit(rate: RateBucket): boolean {
    const now = performance.now();
    const refill = ((now - rate.refilledAt) / 1000) * CLIENT_MESSAGES_PER_SECOND;
    rate.refilledAt = now;
    rate.tokens = Math.min(CLIENT_MESSAGE_BURST, rate.tokens + refill);
    rate.excess = Math.max(0, rate.excess - refill);
    if (rate.tokens >= 1) {
      rate.tokens -= 1;
      return true;
    }
    rate.excess += 1;
    return false;
  }
}
