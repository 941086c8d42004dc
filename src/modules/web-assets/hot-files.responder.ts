import { Injectable } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ViewerGate } from '../../shared/viewer-gate/viewer-gate.js';
import { matchesEtag } from './etag.js';
import { isVersionPath, VersionFiles } from './version-files.js';
import { WebAssetsService, type ServedFile } from './web-assets.service.js';

/**
 * web_image.jpg and data.json from memory (ETag/304, `Cache-Control: no-cache`), and the
 * versions' files (`/v/...`, immutable). After each new_image every phone asks for these
 * at once, so the request front (HttpHardening, installed by ServerLifecycle at START)
 * answers them through {@link answer} from the HTTP server's 'request' event, ahead of
 * Express's router and body parsers. Anything else, and these while not running, goes on
 * to Express, so STOP's 503 is decided in one place (web-folder.middleware.ts).
 * The host app's own Express middleware (CORS, logging) does not see these files.
 */
@Injectable()
export class HotFileResponder {
  constructor(
    private readonly assets: WebAssetsService,
    private readonly gate: ViewerGate,
    private readonly versions: VersionFiles,
  ) {}

  /** Sends a file kept in memory: 304 when the client's validator matches. */
  send(req: IncomingMessage, res: ServerResponse, file: ServedFile): void {
    if (matchesEtag(req.headers['if-none-match'], file.etag)) {
      res.writeHead(304, file.headers.notModified).end();
      return;
    }
    res.writeHead(200, file.headers.ok).end(req.method === 'HEAD' ? undefined : file.body);
  }

  /** True when `req` was a GET/HEAD of a hot file or of a version's file, and is being answered. */
  answer(req: IncomingMessage, res: ServerResponse): boolean {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !this.gate.acceptsViewers) {
      return false;
    }
    const url = req.url ?? '';
    const query = url.indexOf('?');
    if (isVersionPath(query === -1 ? url : url.slice(0, query))) {
      // After a new_image every phone asks for the same few tiles; their 404s are decided here too.
      this.versions.handle(req, res).catch(() => {
        if (!res.headersSent) {
          res.writeHead(500).end();
        } else {
          res.destroy();
        }
      });
      return true;
    }
    // Only the exact names: an encoded variant goes the long way, through the middleware.
    const file = url.startsWith('/') ? this.assets.inMemory(url.slice(1, query === -1 ? undefined : query)) : undefined;
    if (!file) {
      return false;
    }
    this.send(req, res, file);
    return true;
  }
}
