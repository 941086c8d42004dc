import { createHash, type Hash } from 'node:crypto';

/** Digests already known, by buffer: computed while the bytes arrived ({@link Sha256WhileReading}). */
const known = new WeakMap<Buffer, string>();

/**
 * SHA-256 of `data` in hex; a buffer read by a {@link Sha256WhileReading} is not hashed again (a
 * big upload's hash held the event loop at the head of its publish). Such a buffer must not
 * change afterwards: the publish path never writes into an image.
 */
export function sha256(data: Buffer): string {
  return known.get(data) ?? createHash('sha256').update(data).digest('hex');
}

/**
 * Hashes a body chunk by chunk as it arrives (each chunk a fraction of a millisecond, between
 * network reads), then remembers the digest for the buffer the chunks were gathered in.
 */
export class Sha256WhileReading {
  private readonly hash: Hash = createHash('sha256');

  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }

  /** The chunks were all of `body`, in order: {@link sha256} of it is now known. */
  finish(body: Buffer): void {
    known.set(body, this.hash.digest('hex'));
  }
}
