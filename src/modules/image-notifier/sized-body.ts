import type { IncomingMessage } from 'node:http';

/** The body did not arrive whole (the client stopped, or the stream failed). */
export class IncompleteBodyError extends Error {
  override name = 'IncompleteBodyError';
}

/**
 * Reads a request body of a declared `length` (its Content-Length, not encoded) into one
 * buffer of that size, chunk by chunk as it arrives. Hand-written because raw-body (express.raw)
 * keeps the chunks and joins them once the last has come: for a 20 MB stack that join is one
 * copy into fresh memory on the event loop, between the upload and the decode (tens of ms
 * here), where these copies ride along the transfer itself.
 */
export function readSizedBody(req: IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = Buffer.allocUnsafeSlow(length);
    let received = 0;
    const done = (err?: Error): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) {
        reject(err);
      } else {
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
