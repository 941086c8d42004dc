import { ImageRejectedError } from './image-rejected.error.js';

const EOI = Buffer.from([0xff, 0xd9]);
/** How far from the end the EOI marker may sit (some writers pad the file). */
const EOI_WINDOW = 64;

/**
 * A JPEG (its signature already sniffed) must end with an end-of-image marker, so a file
 * cut off by an interrupted transfer never replaces a good image. The header itself is
 * decoded with the metadata (image-converter), and every block unless `verify: 'header'`.
 */
export function assertJpegEnds(bytes: Buffer): void {
  if (bytes.subarray(Math.max(0, bytes.length - EOI_WINDOW)).lastIndexOf(EOI) === -1) {
    throw new ImageRejectedError('corrupt', 'truncated JPEG: no end-of-image marker');
  }
}
