import type { IncomingMessage } from 'node:http';
import { Sha256WhileReading } from '../../common/digest.js';
import { sniffImageFormat } from '../../common/image-format.js';

/** The body did not arrive whole (the client stopped, or the stream failed). */
export class IncompleteBodyError extends Error {
  override name = 'IncompleteBodyError';
}

/**
 * Reads a request body of a declared `length` (its Content-Length, not encoded) into one
 * buffer of that size, chunk by chunk as it arrives. Hand-written because raw-body (express.raw)
 * keeps the chunks and joins them once the last has come: for a 20 MB stack that join is one
 * copy into fresh memory on the event loop, between the upload and the decode (tens of ms
 * here), where these copies ride along the transfer itself. A JPEG's SHA-256 (data.json names
 * its image by it) is computed the same way, chunk by chunk, rather than in one go after. A
 * FITS body is read into shared memory: the pixel worker reads it there, where a transfer
 * would first copy its 24 MB (12 MP, 16-bit) so that the body stays the caller's.
 */
export function readSizedBody(req: IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let body: Buffer = Buffer.alloc(0);
    let received = 0;
    let hash: Sha256WhileReading | undefined;
    const done = (err?: Error): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) {
        reject(err);
      } else {
        hash?.finish(body);
        resolve(body);
      }
    };
    const onData = (chunk: Buffer): void => {
      // Node's parser stops at Content-Length: more cannot come; checked all the same.
      if (received + chunk.length > length) {
        req.resume();
        done(new IncompleteBodyError(`more than the ${length} bytes of its Content-Length arrived`));
        return;
      }
      if (received === 0) {
        const format = sniffImageFormat(chunk);
        body = format === 'fits' ? Buffer.from(new SharedArrayBuffer(length)) : Buffer.allocUnsafeSlow(length);
        // Only a JPEG may be published as it is: other formats are converted, their digest is another's.
        hash = format === 'jpeg' ? new Sha256WhileReading() : undefined;
      }
      hash?.update(chunk);
      chunk.copy(body, received);
      received += chunk.length;
    };
    const onEnd = (): void => done(received === length ? undefined : new IncompleteBodyError(`${received} of ${length} bytes arrived`));
    const onError = (err: Error): void => done(new IncompleteBodyError(`${err.message} after ${received} of ${length} bytes`));
    const onClose = (): void => done(received === length ? undefined : new IncompleteBodyError(`request aborted after ${received} of ${length} bytes`));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}
