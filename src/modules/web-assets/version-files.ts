import { Inject, Injectable } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { VERSIONS_FOLDER } from './version-store.js';
import { downloadDisposition, type VersionAbout } from './download-name.js';
import { matchesEtag } from './etag.js';
import { DeepLevels } from './deep-levels.service.js';
import { DZI_FILE, FULL_IMAGE_FILE, VERSION_INFO_FILE } from './pyramid.js';

/** `/v/<version>/image.dzi`, `/v/<version>/image.jpg` or `/v/<version>/image_files/<level>/<col>_<row>.<ext>`; nothing else. */
const VERSION_PATH = /^\/v\/([1-9][0-9]{0,15})\/(image\.dzi|image\.jpg|image_files\/(?:0|[1-9][0-9]{0,2})\/(?:0|[1-9][0-9]{0,5})_(?:0|[1-9][0-9]{0,5})\.(jpeg|webp))$/;

const TYPES: Record<string, string> = {
  dzi: 'application/xml; charset=utf-8',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** True when a URL path (query stripped) lies under `/v/`: the handler answers it, 404 included. */
export function isVersionPath(path: string): boolean {
  return path === '/v' || path.startsWith('/v/');
}

/**
 * Serves the files of published versions, `/v/<version>/...`, strictly from
 * `<webFolder>/v/`: the path must match the Deep Zoom layout exactly (digits only, no
 * encoding, no dot segments), and the file is opened without following symlinks anywhere
 * below `v/`. A version folder never changes once announced, so the answer is immutable
 * with a strong ETag (inode, size, mtime); a pruned or unknown version is a 404.
 */
@Injectable()
export class VersionFiles {
  private readonly root: string;
  private rootReal: string | undefined;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) options: Pick<ImageServerOptions, 'webFolder'>,
    private readonly deep: DeepLevels,
  ) {
    this.root = join(options.webFolder, VERSIONS_FOLDER);
  }

  /** Answers a GET or HEAD whose path {@link isVersionPath}; any other method gets a 405. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': '0' }).end();
      return;
    }
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const match = VERSION_PATH.exec(query === -1 ? url : url.slice(0, query));
    if (!match) {
      notFound(res);
      return;
    }
    const [, version, relative, tileExt] = match;
    const ext = relative === DZI_FILE ? 'dzi' : relative === FULL_IMAGE_FILE ? 'jpeg' : tileExt;
    // `?download=1` on the full image: a Save with a file name that says what and when.
    const download = relative === FULL_IMAGE_FILE && new URLSearchParams(query === -1 ? '' : url.slice(query + 1)).get('download') === '1';
    let file = await this.openInside(join(version, relative));
    if (!file && tileExt !== undefined) {
      // A deep level not cut yet: the tile is waited for, never a wrong or part-written one.
      const [level, col, row] = relative.split(/[/_.]/).slice(2, 5).map(Number);
      const place = await this.deep.provide({ version: Number(version), level, col, row, ext: tileExt });
      if (place !== undefined) {
        // Whole in the cut's folder, or moved into the version since.
        file = (await this.openInside(place)) ?? (await this.openInside(join(version, relative)));
        if (!file) {
          notFound(res, 'no-store');
          return;
        }
      }
    }
    if (!file) {
      notFound(res);
      return;
    }
    try {
      const stats = await file.stat();
      if (!stats.isFile()) {
        notFound(res);
        return;
      }
      const etag = `"${version}-${stats.ino.toString(36)}-${stats.size.toString(36)}-${Math.floor(stats.mtimeMs).toString(36)}"`;
      const common: Record<string, string> = { 'Cache-Control': IMMUTABLE, ETag: etag, 'Last-Modified': stats.mtime.toUTCString() };
      if (download) {
        common['Content-Disposition'] = downloadDisposition(await this.about(version), Number(version));
      }
      if (matchesEtag(req.headers['if-none-match'], etag)) {
        res.writeHead(304, common).end();
        return;
      }
      const body = req.method === 'HEAD' ? undefined : await file.readFile();
      res.writeHead(200, { ...common, 'Content-Type': TYPES[ext], 'Content-Length': String(stats.size) }).end(body);
    } finally {
      await file.close();
    }
  }

  /** The version's `about.json` (object, stack size, time); undefined when missing or unreadable. */
  private async about(version: string): Promise<VersionAbout | undefined> {
    const file = await this.openInside(join(version, VERSION_INFO_FILE));
    if (!file) {
      return undefined;
    }
    try {
      const parsed = JSON.parse(await file.readFile('utf8')) as Partial<VersionAbout>;
      return {
        object: typeof parsed.object === 'string' ? parsed.object : null,
        stackSize: Number.isSafeInteger(parsed.stackSize) ? (parsed.stackSize as number) : 0,
        at: typeof parsed.at === 'string' ? parsed.at : '',
      };
    } catch {
      return undefined;
    } finally {
      await file.close();
    }
  }

  /**
   * Opens `<root>/<relative>` only when no component below the root is a symlink: the
   * last one by O_NOFOLLOW, the folders by comparing the real path with the plain one.
   */
  private async openInside(relative: string): Promise<FileHandle | undefined> {
    try {
      this.rootReal ??= await realpath(this.root);
      const path = join(this.root, relative);
      const real = await realpath(path);
      if (real !== join(this.rootReal, relative)) {
        return undefined;
      }
      // O_NONBLOCK: a FIFO put here must not hold a libuv thread until a writer comes (it is
      // then no file, a 404); regular files ignore the flag.
      return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return undefined; // missing (pruned) or not readable: a 404 either way
    }
  }
}

/** A 404; `no-store` for a tile that may exist later (its deep level failed to be cut so far). */
function notFound(res: ServerResponse, cache = 'no-cache'): void {
  const body = JSON.stringify({ statusCode: 404, message: 'Not Found' });
  res
    .writeHead(404, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': cache })
    .end(body);
}
