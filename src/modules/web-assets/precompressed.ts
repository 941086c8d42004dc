import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { matchesEtag } from './etag.js';

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** A text asset with its compressed forms, made once (at START), served from memory. */
export interface CompressedAsset {
  contentType: string;
  /** Strong ETag of the uncompressed bytes; each encoding gets its own suffix. */
  etag: string;
  identity: Buffer;
  br: Buffer;
  gzip: Buffer;
}

/** File types worth compressing: the viewer's text files. Images are compressed already. */
const COMPRESSIBLE: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

/** The content type of a compressible file name, or undefined for any other. */
export function compressibleType(name: string): string | undefined {
  const dot = name.lastIndexOf('.');
  return dot === -1 ? undefined : COMPRESSIBLE[name.slice(dot)];
}

/**
 * Compresses a text asset with brotli and gzip. Brotli quality 9 (not 11): about the same
 * size on these files for a fraction of the CPU, which matters on a Raspberry Pi's START.
 */
export async function compressAsset(body: Buffer, contentType: string): Promise<CompressedAsset> {
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
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { contentType, etag, identity: body, br, gzip: gz };
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
