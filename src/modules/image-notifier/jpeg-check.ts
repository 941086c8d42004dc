import { ImageRejectedError } from './image-rejected.error.js';

const SOI = [0xff, 0xd8, 0xff];
const EOI = Buffer.from([0xff, 0xd9]);
/** How far from the end the EOI marker may sit (some writers pad the file). */
const EOI_WINDOW = 64;

export function looksLikeJpeg(bytes: Buffer): boolean {
  return bytes.length >= SOI.length && SOI.every((b, i) => bytes[i] === b);
}

/**
 * The JPEG's envelope: its signature and an end-of-image marker, so a file cut off by an
 * interrupted transfer never replaces a good image. The header itself is decoded with the
 * metadata (image-converter), and every block only for bytes from outside the process.
 */
export function assertJpegEnvelope(bytes: Buffer): void {
  if (!looksLikeJpeg(bytes)) {
    throw new ImageRejectedError('unsupported-type', 'not a JPEG image (no JPEG signature)');
  }
  if (bytes.subarray(Math.max(0, bytes.length - EOI_WINDOW)).lastIndexOf(EOI) === -1) {
    throw new ImageRejectedError('corrupt', 'truncated JPEG: no end-of-image marker');
  }
}
