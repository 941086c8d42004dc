import type { Logger } from '@nestjs/common';
import type { IncomingMessage, Server } from 'node:http';
import { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { guarded } from '../../common/guarded.js';
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

/**
 * Connections kept for this machine when phones hold all the others, so the stacker's
 * publish and the control routes still get in during a flood: an eighth of the total, 4 to 64.
 */
export function loopbackReserve(maxConnections: number): number {
  return Math.min(64, Math.max(4, Math.floor(maxConnections / 8)));
}

/** Node itself drops connections beyond the cap plus this (`server.maxConnections`), should the guard miss some. */
const BACKSTOP_MARGIN = 64;
/** The first byte of a TLS handshake record; anything else on the TLS port is not TLS. */
const TLS_HANDSHAKE = 0x16;
/** A Host header fit to be written back in the plain-HTTP answer on the TLS port. */
const SAFE_HOST = /^(?:[a-z0-9.-]{1,253}|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$/i;

interface Tracked {
  address: string;
  openedAt: number;
  /** A request or an upgrade arrived: Node's own timeouts apply from then on. */
  spoke: boolean;
  upgraded: boolean;
  windowStart?: number;
  windowSent?: number;
}

/** Bytes libuv still holds for the kernel: the progress of one big write is visible only there. */
function unsentBytes(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  return typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : socket.writableLength;
}

/** The TCP socket under a TLS socket (what the 'connection' event gave), or the socket itself. */
function tcpSocketOf(socket: Socket): Socket {
  const parent = (socket as unknown as { _parent?: unknown })._parent;
  return parent instanceof Socket ? parent : socket;
}

/** A whole HTTP/1.1 answer written straight to a socket that no HTTP parser will ever see. */
function rawAnswer(status: 400 | 503, message: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ statusCode: status, message });
  const lines = [
    `HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Service Unavailable'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    'Connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const ignore = (): void => undefined;

/**
 * Counts the server's connections per source address and in all, at accept: one over a cap
 * is answered a canned 503 with `Retry-After` (nothing on TLS, where no answer is readable
 * before a handshake) and destroyed before any HTTP or TLS parsing, and counts toward nothing.
 * This machine keeps a reserve ({@link loopbackReserve}). Closes connections that send no
 * request (or finish no TLS handshake) within `headersTimeoutMs` and slow readers, on HTTP and
 * HTTPS alike, answers plain HTTP on the TLS port, and sets Node's HTTP timeouts on purpose.
 * One instance per server.
 */
export class ConnectionGuard {
  private readonly sockets = new Map<Socket, Tracked>();
  private readonly perAddress = new Map<string, number>();
  private readonly reserve: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastServerErrorAt = -Infinity;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly log: RefusalLog,
    private readonly logger: Pick<Logger, 'warn'>,
  ) {
    this.reserve = loopbackReserve(limits.maxConnections);
  }

  /** Connections admitted and open now. */
  get open(): number {
    return this.sockets.size;
  }

  attach(server: Server): void {
    server.headersTimeout = this.limits.headersTimeoutMs;
    server.requestTimeout = this.limits.requestTimeoutMs;
    server.keepAliveTimeout = this.limits.keepAliveTimeoutMs;
    server.maxConnections = this.limits.maxConnections + BACKSTOP_MARGIN;
    const secure = server instanceof TlsServer;
    // HTTP's parser (or TLS's wrapper) and Nest's socket tracking see admitted sockets only.
    const downstream = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    const handOn = (socket: Socket): void => {
      for (const listener of downstream) {
        listener.call(server, socket);
      }
    };
    server.on('connection', (socket: Socket) => {
      if (!this.admit(socket, secure)) {
        return;
      }
      if (secure) {
        this.sniff(socket, () => handOn(socket));
      } else {
        handOn(socket);
      }
    });
    // Upgraded sockets are the viewers' WebSockets: ws bounds their backlog, not the sweep.
    server.on('upgrade', (req: IncomingMessage) => this.upgradeArrived(req));
    // After the bind (whose errors ServerLifecycle reports): an accept that fails (EMFILE) must not end the process.
    server.once('listening', () => server.on('error', (err: NodeJS.ErrnoException) => this.serverError(err)));
    const every = Math.max(50, Math.min(1000, this.limits.slowClientWindowMs / 4, this.limits.headersTimeoutMs / 4));
    this.sweepTimer = setInterval(guarded(this.logger, 'the connection sweep failed', () => this.sweep()), every);
    this.sweepTimer.unref();
    server.once('close', () => this.detach());
  }

  detach(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** A request arrived on this connection (the request front tells): Node's timeouts take over. */
  requestArrived(req: IncomingMessage): void {
    const entry = this.entryOf(req.socket);
    if (entry !== undefined) {
      entry.spoke = true;
    }
  }

  /** An upgrade arrived on this connection (also one handed to a scope's app): ws bounds it from then on. */
  upgradeArrived(req: IncomingMessage): void {
    const entry = this.entryOf(req.socket);
    if (entry !== undefined) {
      entry.spoke = true;
      entry.upgraded = true;
    }
  }

  private entryOf(socket: Socket): Tracked | undefined {
    return this.sockets.get(socket) ?? this.sockets.get(tcpSocketOf(socket));
  }

  /** Counts the socket, or answers and destroys it when over a cap. */
  private admit(socket: Socket, secure: boolean): boolean {
    const address = socket.remoteAddress;
    if (address === undefined) {
      // Reset by the client before it was accepted.
      socket.destroy();
      return false;
    }
    const local = isThisMachine(address);
    const room = local ? this.limits.maxConnections : this.limits.maxConnections - this.reserve;
    const mine = this.perAddress.get(address) ?? 0;
    if (this.sockets.size >= room) {
      this.refuse(socket, secure, address, 'too many connections: try again later', `${this.sockets.size} connections open, ${room} allowed${local ? '' : ` (${this.reserve} more kept for this machine)`}`);
      return false;
    }
    if (!local && mine >= this.limits.maxConnectionsPerAddress) {
      this.refuse(socket, secure, address, 'too many connections from this address: try again later', `${mine} connections open from this address, the limit is ${this.limits.maxConnectionsPerAddress}`);
      return false;
    }
    this.perAddress.set(address, mine + 1);
    this.sockets.set(socket, { address, openedAt: performance.now(), spoke: false, upgraded: false });
    socket.once('close', () => {
      this.sockets.delete(socket);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left <= 0) {
        this.perAddress.delete(address);
      } else {
        this.perAddress.set(address, left);
      }
    });
    return true;
  }

  private refuse(socket: Socket, secure: boolean, address: string, message: string, detail: string): void {
    this.log.refused('connection', address, `${detail}; closed at accept`);
    socket.on('error', ignore);
    if (!secure) {
      // A fresh socket's send buffer is empty: the answer reaches the kernel before the close.
      socket.end(rawAnswer(503, message, { 'Retry-After': '10' }));
    }
    socket.destroy();
  }

  /**
   * On the TLS port, reads the first byte before TLS does: a handshake goes on to TLS (the
   * byte put back), anything else is plain HTTP and gets a 400 saying to use https://.
   */
  private sniff(socket: Socket, handOn: () => void): void {
    socket.on('error', ignore);
    const onReadable = (): void => {
      const head = socket.read(1) as Buffer | null;
      if (head === null) {
        return;
      }
      socket.off('readable', onReadable);
      if (head[0] === TLS_HANDSHAKE) {
        socket.unshift(head);
        handOn();
        return;
      }
      const request = Buffer.concat([head, (socket.read() as Buffer | null) ?? Buffer.alloc(0)]).toString('latin1');
      const host = /^host:[ \t]*([^\r\n]*)/im.exec(request)?.[1]?.trim() ?? '';
      const url = SAFE_HOST.test(host) ? `https://${host}/` : 'https:// instead of http://';
      this.log.refused('plain HTTP on the TLS port', this.sockets.get(socket)?.address ?? '?', 'answered 400');
      socket.end(rawAnswer(400, `This port speaks HTTPS: open ${url}`));
    };
    socket.on('readable', onReadable);
  }

  private serverError(err: NodeJS.ErrnoException): void {
    const now = performance.now();
    if (now - this.lastServerErrorAt >= 10_000) {
      this.lastServerErrorAt = now;
      this.logger.warn(`the server could not accept a connection: ${err.code ?? err.message}${err.code === 'EMFILE' ? ' (open-files limit reached; raise it or lower MAX_CONNECTIONS)' : ''}`);
    }
  }

  private sweep(): void {
    const now = performance.now();
    const { minReadBytesPerSecond, slowClientWindowMs, headersTimeoutMs } = this.limits;
    for (const [socket, entry] of this.sockets) {
      if (entry.upgraded) {
        continue;
      }
      if (!entry.spoke && now - entry.openedAt > headersTimeoutMs) {
        // Node checks headersTimeout only every 30 s and not during a TLS handshake.
        this.log.refused('connection', entry.address, `no request within ${headersTimeoutMs} ms; closed`);
        socket.destroy();
        continue;
      }
      // Under TLS the TCP socket's own buffer stays empty: what waits is in its handle's queue.
      const unsent = unsentBytes(socket);
      if (unsent === 0 && socket.writableLength === 0) {
        entry.windowStart = undefined;
        continue;
      }
      const sent = socket.bytesWritten - unsent;
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
