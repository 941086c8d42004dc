import { Injectable } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ViewerGate } from '../lifecycle/viewer-gate.js';
import { WebAssetsService, type ServedFile } from './web-assets.service.js';

/** `If-None-Match` may list several validators, or `*` (RFC 9110 13.1.2, weak comparison). */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) {
    return false;
  }
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/**
 * web_image.jpg and data.json from memory (ETag/304, `Cache-Control: no-cache`). After
 * each new_image every phone asks for both at once, so the request front (HttpHardening,
 * installed by ServerLifecycle at START) answers them through {@link answer} from the HTTP
 * server's 'request' event, ahead of Express's router and body parsers. Anything else, and
 * these two while not running, goes on to Express, so STOP's 503 and the 404s are decided
 * in one place (WebFolderMiddleware).
 * The host app's own Express middleware (CORS, logging) does not see these two files.
 */
@Injectable()
export class HotFileResponder {
  constructor(
    private readonly assets: WebAssetsService,
    private readonly gate: ViewerGate,
  ) {}

  /** Sends a file kept in memory: 304 when the client's validator matches. */
  send(req: IncomingMessage, res: ServerResponse, file: ServedFile): void {
    if (matchesEtag(req.headers['if-none-match'], file.etag)) {
      res.writeHead(304, file.headers.notModified).end();
      return;
    }
    res.writeHead(200, file.headers.ok).end(req.method === 'HEAD' ? undefined : file.body);
  }

  /** True when `req` was a GET/HEAD of a hot file and has been answered. */
  answer(req: IncomingMessage, res: ServerResponse): boolean {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !this.gate.acceptsViewers) {
      return false;
    }
    const url = req.url ?? '';
    const query = url.indexOf('?');
    // Only the exact names: an encoded variant goes the long way, through the middleware.
    const file = url.startsWith('/') ? this.assets.inMemory(url.slice(1, query === -1 ? undefined : query)) : undefined;
    if (!file) {
      return false;
    }
    this.send(req, res, file);
    return true;
  }
}
