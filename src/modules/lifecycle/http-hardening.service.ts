import { Inject, Injectable } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import helmet from 'helmet';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ACCEPTED_MEDIA_TYPES, formatOfMediaType } from '../../common/image-format.js';
import { HotFileResponder } from '../web-assets/hot-files.responder.js';
import { HttpLimits } from '../../shared/http-limits/http-limits.js';
import { ScopeHooks } from '../../shared/scope-hooks/scope-hooks.js';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

const UPLOAD_PATH = '/api/image';

/**
 * The viewer's security headers. OpenSeadragon sets inline styles and may draw from
 * blob:/data: URLs; the viewer opens ws:/wss: to this host. No HSTS and no
 * upgrade-insecure-requests: the service is plain HTTP on a LAN unless TLS is set.
 * The CSP is stackcast's: WebFolderFiles removes it from a web-folder file that is
 * not stackcast's own (a page the user put there runs as written, inline scripts included).
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

/** Servers whose 'request' event already goes through a front (one module per server). */
const serversWithFront = new WeakSet<Server>();

/**
 * The one owner of the HTTP server's request front, installed by ServerLifecycle at START
 * ahead of Express: tells the connection caps a request arrived, security headers, a 415 for a `PUT /api/image`
 * whose Content-Type is not an image's (before any body parser reads it), the hot files
 * from memory ({@link HotFileResponder}), and only then Express.
 */
@Injectable()
export class HttpHardening {
  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly limits: HttpLimits,
    private readonly hotFiles: HotFileResponder,
    private readonly scopes: ScopeHooks,
  ) {}

  /** Puts the front before the server's request listeners (Express); once per server. */
  install(server: Server | undefined): void {
    if (!server || typeof server.listeners !== 'function' || serversWithFront.has(server)) {
      return;
    }
    serversWithFront.add(server);
    if (this.options.listen) {
      this.adapterHost.httpAdapter.getInstance<{ disable?: (name: string) => void }>().disable?.('x-powered-by');
    }
    const downstream = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res, () => {
        for (const listener of downstream) {
          listener.call(server, req, res);
        }
      });
    });
    // A scope's `/s/<id>/ws` goes to that scope's app, ahead of the ws adapter (which would refuse the path).
    const upgrades = server.listeners('upgrade') as UpgradeListener[];
    server.removeAllListeners('upgrade');
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.scopes.routes?.upgrade(req, socket, head) === true) {
        this.limits.upgradeArrived(req);
        return;
      }
      for (const listener of upgrades) {
        listener.call(server, req, socket, head);
      }
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse, express: () => void): void {
    this.limits.requestArrived(req);
    if (this.options.listen) {
      securityHeaders(req, res, () => undefined);
    } else {
      // Embedded: the host's pages are not ours to put a CSP on.
      res.setHeader('X-Content-Type-Options', 'nosniff');
    }
    if (this.scopes.routes?.request(req, res) === true) {
      return;
    }
    const url = req.url ?? '';
    if (req.method === 'PUT' && (url === UPLOAD_PATH || url.startsWith(`${UPLOAD_PATH}?`))) {
      this.checkUploadType(req, res, express);
      return;
    }
    if (!this.hotFiles.answer(req, res)) {
      express();
    }
  }

  /** Before any body parser: a form Content-Type (curl's default) is a 415, not a parser's 413. */
  private checkUploadType(req: IncomingMessage, res: ServerResponse, express: () => void): void {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (formatOfMediaType(type) === undefined) {
      answer(res, 415, `Content-Type must be one of ${ACCEPTED_MEDIA_TYPES.join(', ')}, got "${type || '(none)'}"`);
      return;
    }
    express();
  }
}
