import type { IncomingMessage } from 'node:http';
import { Sha256WhileReading } from '../../common/digest.js';
import { sniffImageFormat } from '../../common/image-format.js';
import { uploadMemory, type UploadMemory } from './upload-memory.js';

/** The body did not arrive whole (the client stopped, or the stream failed). */
export class IncompleteBodyError extends Error {
  override name = 'IncompleteBodyError';
}

/**
 * Reads a body of a declared `length` (its Content-Length, not encoded) into one buffer as it
 * arrives: raw-body (express.raw) joins the chunks at the end, one more copy of a big stack on
 * the event loop. A JPEG is hashed on the way (data.json names it by its SHA-256); a FITS goes
 * into shared memory, where the pixel worker reads it without a copy. The buffer is `memory`'s
 * warm one when it fits (see {@link UploadMemory}).
 */
export function readSizedBody(req: IncomingMessage, length: number, memory: UploadMemory = uploadMemory): Promise<Buffer> {
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
        body = memory.take(length, { shared: format === 'fits' });
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
