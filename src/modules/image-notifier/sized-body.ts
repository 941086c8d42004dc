import type { IncomingMessage } from 'node:http';
import { Sha256WhileReading } from '../../common/digest.js';

/** The body did not arrive whole (the client stopped, or the stream failed). */
export class IncompleteBodyError extends Error {
  override name = 'IncompleteBodyError';
}

/** The first bytes of every JPEG. */
const JPEG_SIGNATURE = Buffer.from([0xff, 0xd8, 0xff]);

/**
 * Reads a request body of a declared `length` (its Content-Length, not encoded) into one
 * buffer of that size, chunk by chunk as it arrives. Hand-written because raw-body (express.raw)
 * keeps the chunks and joins them once the last has come: for a 20 MB stack that join is one
 * copy into fresh memory on the event loop, between the upload and the decode (tens of ms
 * here), where these copies ride along the transfer itself. A JPEG's SHA-256 (data.json names
 * its image by it) is computed the same way, chunk by chunk, rather than in one go after.
 */
export function readSizedBody(req: IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = Buffer.allocUnsafeSlow(length);
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
      if (received === 0 && chunk.length >= JPEG_SIGNATURE.length && chunk.subarray(0, JPEG_SIGNATURE.length).equals(JPEG_SIGNATURE)) {
        // Only a JPEG may be published as it is: other formats are converted, their digest is another's.
        hash = new Sha256WhileReading();
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
