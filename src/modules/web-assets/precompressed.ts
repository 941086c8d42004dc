import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { matchesEtag } from './etag.js';

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** A text file with its compressed forms, served from memory while the file on disk is unchanged. */
export interface CompressedAsset {
  contentType: string;
  /** SHA-256 of the uncompressed bytes, hex. */
  digest: string;
  /** Strong ETag of the uncompressed bytes; each encoding gets its own suffix. */
  etag: string;
  identity: Buffer;
  br: Buffer;
  gzip: Buffer;
}

/** File types worth compressing: text. Images are compressed already. */
const COMPRESSIBLE: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
};

/** The content type of a compressible file name, or undefined for any other. */
export function compressibleType(name: string): string | undefined {
  const dot = name.lastIndexOf('.');
  return dot === -1 ? undefined : COMPRESSIBLE[name.slice(dot)];
}

/** Compressed forms by content (type and SHA-256), least recently used first; see {@link compressAsset}. */
const byContent = new Map<string, { asset: Promise<CompressedAsset>; bytes: number }>();
let byContentBytes = 0;
/** Memory for {@link byContent}: the viewer's files take about 0.5 MB in all three forms. */
const MAX_SHARED_BYTES = 16 * 1024 * 1024;

/**
 * Compresses a text file with brotli and gzip. Brotli quality 9 (not 11): about the same
 * size on these files for a fraction of the CPU, which matters on a Raspberry Pi's START.
 * The same bytes are compressed once per process: every scope's app serves main's viewer
 * files (about 0.6 s of brotli and gzip here for each app otherwise).
 */
export async function compressAsset(body: Buffer, contentType: string): Promise<CompressedAsset> {
  const hash = createHash('sha256').update(body).digest();
  const key = `${contentType} ${hash.toString('hex')}`;
  const known = byContent.get(key);
  if (known) {
    byContent.delete(key);
    byContent.set(key, known);
    return known.asset;
  }
  const entry = { asset: compress(body, contentType, hash), bytes: 0 };
  byContent.set(key, entry);
  try {
    const asset = await entry.asset;
    if (byContent.get(key) === entry) {
      entry.bytes = asset.identity.length + asset.br.length + asset.gzip.length;
      byContentBytes += entry.bytes;
      for (const [name, other] of byContent) {
        if (byContentBytes <= MAX_SHARED_BYTES) {
          break;
        }
        byContentBytes -= other.bytes;
        byContent.delete(name);
      }
    }
    return asset;
  } catch (err) {
    if (byContent.get(key) === entry) {
      byContent.delete(key);
    }
    throw err;
  }
}

async function compress(body: Buffer, contentType: string, hash: Buffer): Promise<CompressedAsset> {
  const [br, gz] = await Promise.all([
    brotli(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 9,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    }),
    gzipAsync(body, { level: 9 }),
  ]);
  const etag = `"${hash.toString('base64url').slice(0, 22)}"`;
  return { contentType, digest: hash.toString('hex'), etag, identity: body, br, gzip: gz };
}

/** Larger text files are sent from disk as they are (serve-static), not compressed in memory. */
const MAX_COMPRESSED_FILE = 4 * 1024 * 1024;
/** Memory for the compressed files (all three forms), the least recently used dropped first. */
const MAX_CACHE_BYTES = 48 * 1024 * 1024;

interface CacheEntry {
  /** The file's identity when read: device, inode, size, mtime and ctime. */
  key: string;
  asset: Promise<CompressedAsset>;
  bytes: number;
}

function identityOf(s: Stats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

/**
 * The text files of the web folder with their brotli and gzip forms, made on the first
 * request and made again when the file changes (its inode, size or times), so what is
 * sent is always the file on disk now.
 */
@Injectable()
export class CompressedFiles {
  private readonly entries = new Map<string, CacheEntry>();
  private total = 0;

  /**
   * The file at `path` (a real path, symlinks resolved) compressed; undefined when it is
   * not a regular file or too large to keep in memory. Throws when it is missing.
   */
  async get(path: string, contentType: string): Promise<CompressedAsset | undefined> {
    const info = await stat(path);
    if (!info.isFile() || info.size > MAX_COMPRESSED_FILE) {
      return undefined;
    }
    const key = identityOf(info);
    const cached = this.entries.get(path);
    if (cached?.key === key) {
      // Most recently used last: the Map's order is the eviction order.
      this.entries.delete(path);
      this.entries.set(path, cached);
      return cached.asset;
    }
    this.drop(path);
    const entry: CacheEntry = { key, asset: this.load(path, contentType), bytes: 0 };
    this.entries.set(path, entry);
    try {
      const asset = await entry.asset;
      if (this.entries.get(path) === entry) {
        entry.bytes = asset.identity.length + asset.br.length + asset.gzip.length;
        this.total += entry.bytes;
        this.evict();
      }
      return asset;
    } catch (err) {
      if (this.entries.get(path) === entry) {
        this.entries.delete(path);
      }
      throw err;
    }
  }

  /** Reads a file whose identity holds still across the read (a copy in progress is read again). */
  private async load(path: string, contentType: string): Promise<CompressedAsset> {
    for (let attempt = 1; ; attempt++) {
      const file = await open(path, 'r');
      try {
        const before = identityOf(await file.stat());
        const body = await file.readFile();
        if (identityOf(await file.stat()) === before || attempt === 3) {
          return await compressAsset(body, contentType);
        }
      } finally {
        await file.close();
      }
    }
  }

  private drop(path: string): void {
    const entry = this.entries.get(path);
    if (entry) {
      this.total -= entry.bytes;
      this.entries.delete(path);
    }
  }

  private evict(): void {
    for (const path of this.entries.keys()) {
      if (this.total <= MAX_CACHE_BYTES) {
        return;
      }
      this.drop(path);
    }
  }
}

/** The encoding to send for an `Accept-Encoding` header: br, then gzip, else none (q=0 honoured). */
export function chooseEncoding(header: string | string[] | undefined): 'br' | 'gzip' | undefined {
  const accepted = new Map<string, number>();
  for (const part of (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) {
      continue;
    }
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    accepted.set(name, q === undefined ? 1 : Number(q));
  }
  const ok = (name: string): boolean => (accepted.get(name) ?? accepted.get('*') ?? 0) > 0;
  if (ok('br')) {
    return 'br';
  }
  return ok('gzip') ? 'gzip' : undefined;
}

/**
 * Answers a GET/HEAD with the best encoding the client accepts, `Vary: Accept-Encoding`,
 * `Cache-Control: no-cache` (revalidated each load: the viewer may change on upgrade) and
 * a 304 when the client's ETag matches.
 */
export function sendCompressed(req: IncomingMessage, res: ServerResponse, asset: CompressedAsset): void {
  const encoding = chooseEncoding(req.headers['accept-encoding']);
  const body = encoding ? asset[encoding] : asset.identity;
  const etag = encoding ? `${asset.etag.slice(0, -1)}-${encoding}"` : asset.etag;
  const headers: Record<string, string> = { 'Cache-Control': 'no-cache', ETag: etag, Vary: 'Accept-Encoding' };
  if (matchesEtag(req.headers['if-none-match'], etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  if (encoding) {
    headers['Content-Encoding'] = encoding;
  }
  headers['Content-Type'] = asset.contentType;
  headers['Content-Length'] = String(body.length);
  res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
}
