import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ViewerGate } from '../../shared/viewer-gate/viewer-gate.js';
import { HotFileResponder } from './hot-files.responder.js';
import { isVersionPath, VersionFiles } from './version-files.js';
import { ViewerFilesService } from './viewer-files.service.js';
import { DATA_FILE, IMAGE_FILE, WebAssetsService } from './web-assets.service.js';
import { WebFolderFiles } from './web-folder-files.js';

/** stackcast's own pages at a route of their own: the lobby and the wall (files of the viewer's bundle). */
export const PAGE_ROUTES: ReadonlyMap<string, string> = new Map([['/scopes', 'lobby.html'], ['/wall', 'wall.html']]);

/**
 * Serves the viewer's files of the web folder as they are on disk now, whoever wrote them
 * (a user's own index.html included), ahead of the routes. @nestjs/serve-static is not used:
 * its catch-all answers the viewer page with 200 for any missing path, and it knows nothing
 * of STOP. Here: web_image.jpg and data.json come from memory (the service that writes
 * them); the versions' files (`/v/...`) by {@link VersionFiles}; the others from disk by
 * {@link WebFolderFiles}; `/scopes` and `/wall` are the lobby's and the wall's pages. A missing file falls through to Nest's 404. With WEB_DEDICATED
 * the folder's other files are served after every route ({@link webFolderFallback}).
 *
 * The hot files and `/v/` are also answered ahead of Express (see {@link HotFileResponder}).
 */
@Injectable()
export class WebFolderMiddleware implements NestMiddleware {
  /** The lobby and the wall are the main app's pages, not a scope's (`/s/<id>/scopes` is no page). */
  private readonly pages: ReadonlyMap<string, string>;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) options: ImageServerOptions,
    private readonly assets: WebAssetsService,
    private readonly viewerFiles: ViewerFilesService,
    private readonly folder: WebFolderFiles,
    private readonly gate: ViewerGate,
    private readonly hot: HotFileResponder,
    private readonly versions: VersionFiles,
  ) {
    this.pages = options.scopeId === undefined ? PAGE_ROUTES : new Map();
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
    const relative = req.method === 'GET' || req.method === 'HEAD' ? (this.pages.get(req.path) ?? this.folder.webPath(req.path)) : undefined;
    // Only the viewer's names here: the work folder may hold the stacker's own files.
    if (relative === undefined || !(relative === IMAGE_FILE || relative === DATA_FILE || this.viewerFiles.isViewerFile(relative))) {
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
    this.folder.send(relative, req, res, next).catch(next);
  }
}

/**
 * WEB_DEDICATED: every other file of the web folder, installed after the routes (stackcast's
 * and a host app's), so a file never shadows a route; 503 for a file while stopped.
 */
export function webFolderFallback(folder: WebFolderFiles, gate: ViewerGate): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const relative = req.method === 'GET' || req.method === 'HEAD' ? folder.webPath(req.path) : undefined;
    if (relative === undefined) {
      next();
      return;
    }
    if (gate.acceptsViewers) {
      folder.send(relative, req, res, next).catch(next);
      return;
    }
    folder.exists(relative).then((exists) => (exists ? stopped(res) : next()), next);
  };
}

function stopped(res: Response): void {
  res.status(503).setHeader('Retry-After', '5').json({ statusCode: 503, message: 'stackcast is stopped' });
}
