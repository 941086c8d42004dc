import { randomBytes } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressAsset } from './precompressed.js';

describe('compressAsset', () => {
  it('compresses the same bytes once per process (every scope app serves main viewer files); other bytes or another type on their own', async () => {
    const text = Buffer.from(`/* ${randomBytes(8).toString('hex')} */\n${'const viewer = 1;\n'.repeat(500)}`);
    const first = await compressAsset(text, 'text/javascript; charset=utf-8');
    // Another app's read of the same file: a different buffer with the same bytes.
    const again = await compressAsset(Buffer.from(text), 'text/javascript; charset=utf-8');
    expect(again).toBe(first);
    expect(brotliDecompressSync(first.br).equals(text)).toBe(true);
    expect(gunzipSync(first.gzip).equals(text)).toBe(true);

    const asCss = await compressAsset(Buffer.from(text), 'text/css; charset=utf-8');
    expect(asCss).not.toBe(first);
    expect(asCss.contentType).toBe('text/css; charset=utf-8');
    const changed = await compressAsset(Buffer.concat([text, Buffer.from('// changed\n')]), 'text/javascript; charset=utf-8');
    expect(changed).not.toBe(first);
    expect(changed.etag).not.toBe(first.etag);
    expect(gunzipSync(changed.gzip).toString()).toMatch(/\/\/ changed\n$/);
  });
});
