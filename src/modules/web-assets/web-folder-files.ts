import { Inject, Injectable } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import serveStatic from 'serve-static';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { CompressedFiles, compressibleType, sendCompressed } from './precompressed.js';
import { ViewerFilesService } from './viewer-files.service.js';
import { WebAssetsService } from './web-assets.service.js';

/** Set on every answer by the request front (HttpHardening); a page the user put in the web folder runs without it. */
const CSP = 'Content-Security-Policy';

/**
 * Files of the web folder as they are on disk now: text brotli or gzip from
 * {@link CompressedFiles} (made again when the file changes), other files through
 * serve-static (ETag, ranges). A realpath check keeps every answer inside the web folder
 * (symlinks included) and out of a work folder inside it; dot-files are never served;
 * a missing file goes to `next` (404). The strict CSP stays only on stackcast's own files.
 */
@Injectable()
export class WebFolderFiles {
  /** WEB_DEDICATED: the web folder is not the work folder, and every file in it is served. */
  readonly dedicated: boolean;
  private readonly files: ReturnType<typeof serveStatic>;
  private roots: { web: string; work: string | undefined } | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly assets: WebAssetsService,
    private readonly viewerFiles: ViewerFilesService,
    private readonly compressed: CompressedFiles,
  ) {
    this.dedicated = options.webFolder !== options.workFolder;
    this.files = serveStatic(options.webFolder, {
      dotfiles: 'ignore',
      index: ['index.html'],
      redirect: false,
      fallthrough: true,
      cacheControl: true,
      maxAge: 0,
    });
  }

  /**
   * The web-folder path a URL path names (`/` and `dir/` name their index.html); undefined
   * for a path that never names a file: undecodable, a dot segment, a backslash or a NUL.
   */
  webPath(path: string): string | undefined {
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
    return (decoded.endsWith('/') ? `${decoded}index.html` : decoded).slice(1);
  }

  /** Whether `relative` is a file inside the web folder now (symlinks resolved, the work folder excluded). */
  async exists(relative: string): Promise<boolean> {
    return (await this.inside(relative)) !== undefined;
  }

  /** Answers a GET/HEAD with the file at `relative`; `next()` when there is none. */
  async send(relative: string, req: Request, res: Response, next: NextFunction): Promise<void> {
    const target = await this.inside(relative);
    if (target === undefined) {
      next();
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

  /** The real path of `relative` when it lies inside the web folder (and outside a work folder in it). */
  private async inside(relative: string): Promise<string | undefined> {
    let target: string;
    let roots: { web: string; work: string | undefined };
    try {
      roots = await this.realRoots();
      target = await this.assets.realpathIn(relative);
    } catch {
      return undefined; // not in the folder (or the folder itself is gone)
    }
    const inWork = roots.work !== undefined && (target + sep).startsWith(roots.work + sep);
    // A symlink leading out of the web folder, or into the work folder inside it.
    return target.startsWith(roots.web + sep) && !(inWork && !this.viewerFiles.isViewerFile(relative)) ? target : undefined;
  }

  /** Real paths of the web folder, and with WEB_DEDICATED of the work folder when it lies inside (or is) it. */
  private async realRoots(): Promise<{ web: string; work: string | undefined }> {
    if (this.roots) {
      return this.roots;
    }
    const web = await this.assets.realpathIn('.');
    // Throws while the work folder is missing (before START): nothing is served then.
    const work = this.dedicated ? await realpath(this.options.workFolder) : web;
    this.roots = { web, work: this.dedicated && (work + sep).startsWith(web + sep) ? work : undefined };
    return this.roots;
  }
}
