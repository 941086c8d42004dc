import { Injectable, type NestMiddleware } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { sep } from 'node:path';
import serveStatic from 'serve-static';
import { ServerLifecycle } from '../lifecycle/server-lifecycle.service.js';
import { sendCompressed } from './precompressed.js';
import { isVersionPath } from './version-files.js';
import { DATA_FILE, IMAGE_FILE, WebAssetsService, type ServedFile } from './web-assets.service.js';

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

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Servers whose 'request' event already answers the hot files (one module per server). */
const serversWithHotPath = new WeakSet<Server>();

/**
 * Serves the files START published into the web folder, and nothing else of it.
 * @nestjs/serve-static is not used: its catch-all answers the viewer page with 200 for
 * any missing path, it serves whatever the folder holds, and it knows nothing of STOP. Here:
 * web_image.jpg and data.json come from memory (no disk read per phone, ETag/304,
 * `Cache-Control: no-cache`); the other files go through serve-static (ETag,
 * Last-Modified, ranges) after a realpath check that keeps every answer inside the web
 * folder, symlinks included. A missing file falls through to Nest's 404.
 *
 * The two hot files are also answered ahead of Express (see {@link answerHotFilesFirst}).
 */
@Injectable()
export class WebFolderMiddleware implements NestMiddleware {
  private readonly files: ReturnType<typeof serveStatic>;
  private rootReal: string | undefined;

  constructor(
    private readonly assets: WebAssetsService,
    private readonly lifecycle: ServerLifecycle,
    adapterHost: HttpAdapterHost,
  ) {
    this.files = serveStatic(assets.webFolder, {
      dotfiles: 'ignore',
      index: ['index.html'],
      redirect: false,
      fallthrough: true,
      cacheControl: true,
      maxAge: 0,
    });
    this.answerHotFilesFirst(adapterHost.httpAdapter?.getHttpServer() as Server | undefined);
  }

  /**
   * After each new_image every phone asks for web_image.jpg and data.json at once. Those
   * two are answered from the HTTP server's 'request' event, before Express's router and
   * body parsers (about 0.2 ms per request, a fifth of what a 3 MB answer costs the server
   * in all). Everything else, and these two when the service is not running, goes on to
   * Express as before, so STOP's 503 and the 404s are decided in one place. The host
   * app's own Express middleware (CORS, logging) does not see these two files.
   */
  private answerHotFilesFirst(server: Server | undefined): void {
    if (!server || typeof server.listeners !== 'function' || serversWithHotPath.has(server)) {
      return;
    }
    const downstream = server.listeners('request') as RequestListener[];
    serversWithHotPath.add(server);
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.answerHot(req, res)) {
        return;
      }
      for (const listener of downstream) {
        listener.call(server, req, res);
      }
    });
  }

  /** True when `req` was a GET/HEAD of a hot file and has been answered. */
  private answerHot(req: IncomingMessage, res: ServerResponse): boolean {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !this.lifecycle.acceptsViewers) {
      return false;
    }
    const url = req.url ?? '';
    const query = url.indexOf('?');
    // Only the exact names: an encoded variant goes the long way, through viewerFile().
    const file = url.startsWith('/') ? this.assets.inMemory(url.slice(1, query === -1 ? undefined : query)) : undefined;
    if (!file) {
      return false;
    }
    this.sendFromMemory(req, res, file);
    return true;
  }

  use(req: Request, res: Response, next: NextFunction): void {
    if (isVersionPath(req.path)) {
      if (!this.lifecycle.acceptsViewers) {
        res.status(503).setHeader('Retry-After', '5').json({ statusCode: 503, message: 'stackcast is stopped' });
        return;
      }
      this.assets.versionFiles.handle(req, res).catch(next);
      return;
    }
    const relative = req.method === 'GET' || req.method === 'HEAD' ? this.viewerFile(req.path) : undefined;
    if (relative === undefined) {
      // Not a file of the viewer: Nest's 404, or a route of the host app when embedded.
      next();
      return;
    }
    if (!this.lifecycle.acceptsViewers) {
      res.status(503).setHeader('Retry-After', '5').json({ statusCode: 503, message: 'stackcast is stopped' });
      return;
    }
    if (relative === IMAGE_FILE || relative === DATA_FILE) {
      const file = this.assets.inMemory(relative);
      if (file) {
        this.sendFromMemory(req, res, file);
      } else {
        next();
      }
      return;
    }
    const compressed = this.assets.compressedAsset(relative);
    if (compressed) {
      sendCompressed(req, res, compressed);
      return;
    }
    this.sendFromDisk(relative, req, res, next).catch(next);
  }

  /**
   * The web-folder path a URL path names, when it is one of the files START published
   * (or the image / data.json); undefined otherwise. Only those are served: the work folder
   * is the web folder by default and may hold the stacker's own files.
   */
  private viewerFile(path: string): string | undefined {
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return undefined;
    }
    // Backslashes and NULs have no business in a web path (Windows-style traversal).
    if (decoded.includes('\\') || decoded.includes('\0') || decoded.split('/').some((s) => s === '..' || s.startsWith('.'))) {
      return undefined;
    }
    const relative = decoded === '/' ? 'index.html' : decoded.slice(1);
    return this.assets.isServed(relative) ? relative : undefined;
  }

  private sendFromMemory(req: IncomingMessage, res: ServerResponse, file: ServedFile): void {
    if (matchesEtag(req.headers['if-none-match'], file.etag)) {
      res.writeHead(304, file.headers.notModified).end();
      return;
    }
    res.writeHead(200, file.headers.ok).end(req.method === 'HEAD' ? undefined : file.body);
  }

  private async sendFromDisk(relative: string, req: Request, res: Response, next: NextFunction): Promise<void> {
    const root = await this.realRoot();
    let target: string;
    try {
      target = await this.assets.realpathIn(relative);
    } catch {
      next(); // removed from the folder since START: Nest answers 404
      return;
    }
    if (!target.startsWith(root + sep)) {
      next(); // replaced by a symlink leading out of the web folder
      return;
    }
    this.files(req, res, next);
  }

  private async realRoot(): Promise<string> {
    this.rootReal ??= await this.assets.realpathIn('.');
    return this.rootReal;
  }
}
