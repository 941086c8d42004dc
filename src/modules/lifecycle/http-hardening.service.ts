import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import helmet from 'helmet';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { formatOfMediaType, MEDIA_TYPES } from '../image-notifier/image-format.js';
import { UploadSlots } from '../image-notifier/upload-slots.js';
import { ConnectionGuard } from './connection-limits.js';
import { ControlGuard } from './control.guard.js';
import { RefusalLog } from './refusal-log.js';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

const UPLOAD_PATH = '/api/image';

/**
 * The viewer's security headers. OpenSeadragon sets inline styles and may draw from
 * blob:/data: URLs; the viewer opens ws:/wss: to this host. No HSTS and no
 * upgrade-insecure-requests: the service is plain HTTP on a LAN unless TLS is set.
 */
const securityHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:', 'blob:'],
      connectSrc: ["'self'", 'ws:', 'wss:'],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'self'"],
    },
  },
  strictTransportSecurity: false,
  // Images and tiles may be fetched through a proxy or CDN of another origin.
  crossOriginResourcePolicy: { policy: 'cross-origin' },
});

function answer(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ statusCode: status, message });
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close', ...headers });
  res.end(body);
}

/**
 * Hardening ahead of Express, on the server's 'request' event: refused connections get
 * their 503, security headers go on every answer, and `PUT /api/image` is checked before
 * any body parser runs (415 for a wrong Content-Type, upload slots for the rest).
 * At bind, {@link limitServer} adds the connection caps, timeouts and the slow-reader sweep.
 */
@Injectable()
export class HttpHardening implements OnModuleInit {
  private readonly logger = new Logger('Limits');
  readonly refusals = new RefusalLog(this.logger);
  private readonly uploads: UploadSlots;
  private connections: ConnectionGuard | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly control: ControlGuard,
  ) {
    this.uploads = new UploadSlots(options.maxUploadsInFlight, options.maxUploadsQueued);
  }

  /** Runs after the middleware is built, so this listener wraps every other one (the hot path too). */
  onModuleInit(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server || typeof server.listeners !== 'function') {
      return;
    }
    const instance = this.adapterHost.httpAdapter.getInstance<{ disable?: (name: string) => void }>();
    instance.disable?.('x-powered-by');
    const downstream = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const pass = (): void => {
        for (const listener of downstream) {
          listener.call(server, req, res);
        }
      };
      this.handle(req, res, pass);
    });
  }

  /** Caps, timeouts and the slow-reader sweep on the server this module binds. */
  limitServer(server: Server): void {
    if (this.connections !== undefined) {
      return;
    }
    this.connections = new ConnectionGuard(this.options, this.refusals);
    this.connections.attach(server);
  }

  /** Why a request or upgrade is refused because its connection is over a cap, or undefined. */
  connectionRefusal(req: IncomingMessage): string | undefined {
    return this.connections?.refusal(req);
  }

  private handle(req: IncomingMessage, res: ServerResponse, pass: () => void): void {
    const refusal = this.connectionRefusal(req);
    if (refusal !== undefined) {
      answer(res, 503, `${refusal}: try again later`, { 'Retry-After': '10' });
      return;
    }
    if (this.options.listen) {
      securityHeaders(req, res, () => undefined);
    } else {
      // Embedded: the host's pages are not ours to put a CSP on.
      res.setHeader('X-Content-Type-Options', 'nosniff');
    }
    const url = req.url ?? '';
    if (req.method === 'PUT' && (url === UPLOAD_PATH || url.startsWith(`${UPLOAD_PATH}?`))) {
      this.upload(req, res, pass);
      return;
    }
    pass();
  }

  /** Before any body parser: a form Content-Type (curl's default) is a 415, not a parser's 413. */
  private upload(req: IncomingMessage, res: ServerResponse, pass: () => void): void {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (formatOfMediaType(type) === undefined) {
      answer(res, 415, `Content-Type must be one of ${Object.values(MEDIA_TYPES).join(', ')}, got "${type || '(none)'}"`);
      return;
    }
    try {
      this.control.authorize(req);
    } catch {
      // The control guard gives the 401/403; an unauthorized call takes no upload slot.
      pass();
      return;
    }
    const gone = new Promise<void>((resolve) => res.once('close', resolve));
    void this.uploads.acquire(gone).then((release) => {
      if (res.destroyed || res.writableEnded) {
        release?.();
        return;
      }
      if (release === undefined) {
        this.refusals.refused('upload', req.socket.remoteAddress ?? '?', `${this.options.maxUploadsInFlight} uploads in flight and ${this.options.maxUploadsQueued} waiting`);
        answer(res, 503, 'too many uploads at once: try again shortly', { 'Retry-After': '2' });
        return;
      }
      res.once('close', release);
      pass();
    });
  }
}
