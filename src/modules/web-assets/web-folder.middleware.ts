import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import serveStatic from 'serve-static';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ViewerGate } from '../lifecycle/viewer-gate.js';
import { HotFileResponder } from './hot-files.responder.js';
import { CompressedFiles, compressibleType, sendCompressed } from './precompressed.js';
import { isVersionPath, VersionFiles } from './version-files.js';
import { ViewerFilesService } from './viewer-files.service.js';
import { DATA_FILE, IMAGE_FILE, WebAssetsService } from './web-assets.service.js';

/** Set on every answer by the request front (HttpHardening); a page the user put in the web folder runs without it. */
const CSP = 'Content-Security-Policy';

/**
 * Serves the web folder as it is on disk now: with WEB_DEDICATED every file in it; when
 * it is the work folder (the stacker's files may be there), the viewer's files only
 * (whoever wrote them). @nestjs/serve-static is not used: its catch-all answers the viewer
 * page with 200 for any missing path, and it knows nothing of STOP. Here: web_image.jpg
 * and data.json come from memory (the service that writes them); text files brotli or
 * gzip from {@link CompressedFiles}, made again when the file changes; the versions' files
 * (`/v/...`) by {@link VersionFiles}; other files through serve-static (ETag, ranges).
 * A realpath check keeps every answer inside the web folder (symlinks included) and out of
 * a work folder inside it; dot-files are never served; a missing file falls through to 404.
 * The strict CSP stays only on stackcast's own files ({@link ViewerFilesService.isOwn}).
 *
 * The hot files and `/v/` are also answered ahead of Express (see {@link HotFileResponder}).
 */
@Injectable()
export class WebFolderMiddleware implements NestMiddleware {
  private readonly files: ReturnType<typeof serveStatic>;
  private readonly dedicated: boolean;
  private roots: { web: string; work: string | undefined } | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly assets: WebAssetsService,
    private readonly viewerFiles: ViewerFilesService,
    private readonly compressed: CompressedFiles,
    private readonly gate: ViewerGate,
    private readonly hot: HotFileResponder,
    private readonly versions: VersionFiles,
  ) {
    this.dedicated = options.webFolder !== options.workFolder;
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
    const relative = req.method === 'GET' || req.method === 'HEAD' ? this.webPath(req.path) : undefined;
    if (relative === undefined) {
      // Not a file of the web folder: Nest's 404, or a route of the host app when embedded.
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
   * The web-folder path a URL path names (`/` and `dir/` name their index.html), when it
   * may be served; undefined otherwise. Without WEB_DEDICATED only the viewer's files are:
   * the web folder is then the work folder and may hold the stacker's own files.
   */
  private webPath(path: string): string | undefined {
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
    const relative = (decoded.endsWith('/') ? `${decoded}index.html` : decoded).slice(1);
    const served = this.dedicated || relative === IMAGE_FILE || relative === DATA_FILE || this.viewerFiles.isViewerFile(relative);
    return served ? relative : undefined;
  }

  private async sendFromDisk(relative: string, req: Request, res: Response, next: NextFunction): Promise<void> {
    let target: string;
    let roots: { web: string; work: string | undefined };
    try {
      roots = await this.realRoots();
      target = await this.assets.realpathIn(relative);
    } catch {
      next(); // not in the folder (or the folder itself is gone): Nest answers 404
      return;
    }
    const inWork = roots.work !== undefined && (target + sep).startsWith(roots.work + sep);
    if (!target.startsWith(roots.web + sep) || (inWork && !this.viewerFiles.isViewerFile(relative))) {
      next(); // a symlink leading out of the web folder, or into the work folder inside it
      return;
    }
    const type = compressibleType(relative);
    if (type) {
      const asset = await this.compressed.get(target, type).catch(() => null);
      if (asset === null) {
        next(); // removed since the realpath
        return;
      }
      if (asset) {
        if (!this.viewerFiles.isOwn(relative, asset.digest)) {
          res.removeHeader(CSP);
        }
        sendCompressed(req, res, asset);
        return;
      }
    }
    // An image, or a text file too large to keep compressed: the CSP only matters for stackcast's page.
    res.removeHeader(CSP);
    this.files(req, res, next);
  }

  /** Real paths of the web folder, and with WEB_DEDICATED of the work folder when it lies inside (or is) it. */
  private async realRoots(): Promise<{ web: string; work: string | undefined }> {
    if (this.roots) {
      return this.roots;
    }
    const web = await this.assets.realpathIn('.');
    // Throws while the work folder is missing (before START): nothing is served then.
    const work = this.dedicated ? await realpath(this.options.workFolder) : web;
    this.roots = { web, work: (work + sep).startsWith(web + sep) && this.dedicated ? work : undefined };
    return this.roots;
  }
}

function stopped(res: Response): void {
  res.status(503).setHeader('Retry-After', '5').json({ statusCode: 503, message: 'stackcast is stopped' });
}
