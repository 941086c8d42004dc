import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { sep } from 'node:path';
import serveStatic from 'serve-static';
import { ViewerGate } from '../../shared/viewer-gate/viewer-gate.js';
import { HotFileResponder } from './hot-files.responder.js';
import { sendCompressed } from './precompressed.js';
import { isVersionPath, VersionFiles } from './version-files.js';
import { DATA_FILE, IMAGE_FILE, WebAssetsService } from './web-assets.service.js';

/**
 * Serves the files START published into the web folder, and nothing else of it.
 * @nestjs/serve-static is not used: its catch-all answers the viewer page with 200 for
 * any missing path, it serves whatever the folder holds, and it knows nothing of STOP. Here:
 * web_image.jpg and data.json come from memory (no disk read per phone, ETag/304,
 * `Cache-Control: no-cache`); the viewer's text files from memory, brotli or gzip; the
 * versions' files (`/v/...`) by {@link VersionFiles}; the other files through serve-static
 * (ETag, Last-Modified, ranges) after a realpath check that keeps every answer inside the
 * web folder, symlinks included. A missing file falls through to Nest's 404.
 *
 * The hot files and `/v/` are also answered ahead of Express (see {@link HotFileResponder}).
 */
@Injectable()
export class WebFolderMiddleware implements NestMiddleware {
  private readonly files: ReturnType<typeof serveStatic>;
  private rootReal: string | undefined;

  constructor(
    private readonly assets: WebAssetsService,
    private readonly gate: ViewerGate,
    private readonly hot: HotFileResponder,
    private readonly versions: VersionFiles,
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
    if (isVersionPath(req.path)) {
      // Answered by HotFileResponder once installed, except while stopped (503 here).
      if (!this.gate.acceptsViewers) {
        stopped(res);
        return;
      }
      this.versions.handle(req, res).catch(next);
      return;
    }
    const relative = req.method === 'GET' || req.method === 'HEAD' ? this.viewerFile(req.path) : undefined;
    if (relative === undefined) {
      // Not a file of the viewer: Nest's 404, or a route of the host app when embedded.
      next();
      return;
    }
    if (!this.gate.acceptsViewers) {
      stopped(res);
      return;
    }
    if (relative === IMAGE_FILE || relative === DATA_FILE) {
      const file = this.assets.inMemory(relative);
      if (file) {
        this.hot.send(req, res, file);
      } else {
        next();
      }
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

  private async sendFromDisk(relative: string, req: Request, res: Response, next: NextFunction): Promise<void> {
    let root: string;
    let target: string;
    try {
      root = await this.realRoot();
      target = await this.assets.realpathIn(relative);
    } catch {
      next(); // removed from the folder (or the folder itself) since START: Nest answers 404
      return;
    }
    if (!target.startsWith(root + sep)) {
      next(); // replaced by a symlink leading out of the web folder
      return;
    }
    // The viewer's text files from memory, brotli or gzip, while they are still on disk.
    const compressed = this.assets.compressedAsset(relative);
    if (compressed) {
      sendCompressed(req, res, compressed);
      return;
    }
    this.files(req, res, next);
  }

  private async realRoot(): Promise<string> {
    this.rootReal ??= await this.assets.realpathIn('.');
    return this.rootReal;
  }
}

function stopped(res: Response): void {
  res.status(503).setHeader('Retry-After', '5').json({ statusCode: 503, message: 'stackcast is stopped' });
}
