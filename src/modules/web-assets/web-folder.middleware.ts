import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { sep } from 'node:path';
import serveStatic from 'serve-static';
import { ServerLifecycle } from '../lifecycle/server-lifecycle.service.js';
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

/** Paths that belong to controllers, never to the web folder. */
const RESERVED = /^\/(status|qr\.svg|api(\/.*)?|ws)$/;

/**
 * Serves the web folder. @nestjs/serve-static is not used: its catch-all answers the
 * viewer page with 200 for any missing path, and it knows nothing of STOP. Here:
 * web_image.jpg and data.json come from memory (no disk read per phone, ETag/304,
 * `Cache-Control: no-cache`); the other files go through serve-static (ETag,
 * Last-Modified, ranges) after a realpath check that keeps every answer inside the web
 * folder, symlinks included. A missing file falls through to Nest's 404.
 */
@Injectable()
export class WebFolderMiddleware implements NestMiddleware {
  private readonly files: ReturnType<typeof serveStatic>;
  private rootReal: string | undefined;

  constructor(
    private readonly assets: WebAssetsService,
    private readonly lifecycle: ServerLifecycle,
  ) {
    this.files = serveStatic(assets.webFolder, {
      dotfiles: 'ignore',
      index: ['index.html'],
      redirect: false,
      fallthrough: true,
      cacheControl: true,
      maxAge: 0,
    });
  }

  use(req: Request, res: Response, next: NextFunction): void {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || RESERVED.test(req.path)) {
      next();
      return;
    }
    if (!this.lifecycle.acceptsViewers) {
      res.status(503).setHeader('Retry-After', '5').json({ statusCode: 503, message: 'stackcast is stopped' });
      return;
    }
    if (req.path === `/${IMAGE_FILE}`) {
      this.sendFromMemory(req, res, next, this.assets.currentImage());
      return;
    }
    if (req.path === `/${DATA_FILE}`) {
      this.sendFromMemory(req, res, next, this.assets.currentData());
      return;
    }
    this.sendFromDisk(req, res, next).catch(next);
  }

  private sendFromMemory(req: Request, res: Response, next: NextFunction, file: ServedFile | undefined): void {
    if (!file) {
      next();
      return;
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('ETag', file.etag);
    res.setHeader('Last-Modified', file.lastModified.toUTCString());
    if (matchesEtag(req.headers['if-none-match'], file.etag)) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Type', file.contentType);
    res.setHeader('Content-Length', file.body.length);
    res.status(200).end(req.method === 'HEAD' ? undefined : file.body);
  }

  private async sendFromDisk(req: Request, res: Response, next: NextFunction): Promise<void> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(req.path);
    } catch {
      next();
      return;
    }
    // Backslashes and NULs have no business in a web path (Windows-style traversal).
    if (decoded.includes('\\') || decoded.includes('\0') || decoded.split('/').some((s) => s === '..' || s.startsWith('.'))) {
      next();
      return;
    }
    const relative = decoded === '/' ? 'index.html' : decoded.slice(1);
    const root = await this.realRoot();
    let target: string;
    try {
      target = await this.assets.realpathIn(relative);
    } catch {
      next(); // missing file: Nest answers 404
      return;
    }
    if (!target.startsWith(root + sep)) {
      next(); // a symlink leading out of the web folder
      return;
    }
    this.files(req, res, next);
  }

  private async realRoot(): Promise<string> {
    this.rootReal ??= await this.assets.realpathIn('.');
    return this.rootReal;
  }
}
