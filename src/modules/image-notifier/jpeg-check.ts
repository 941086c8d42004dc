import sharp from 'sharp';
import { ImageRejectedError } from './image-rejected.error.js';

const SOI = [0xff, 0xd8, 0xff];
/** How far from the end the EOI marker may sit (some writers pad the file). */
const EOI_WINDOW = 64;

export interface JpegInfo {
  width: number;
  height: number;
}

export function looksLikeJpeg(bytes: Buffer): boolean {
  return bytes.length >= SOI.length && SOI.every((b, i) => bytes[i] === b);
}

/**
 * Refuses anything but a complete JPEG: the magic bytes, a header that libvips decodes
 * fully (frame size, components), and an end-of-image marker, so a file cut off by an
 * interrupted transfer never replaces a good image.
 */
export async function assertCompleteJpeg(bytes: Buffer): Promise<JpegInfo> {
  if (!looksLikeJpeg(bytes)) {
    throw new ImageRejectedError('unsupported-type', 'not a JPEG image (no JPEG signature)');
  }
  let width: number | undefined;
  let height: number | undefined;
  try {
    const meta = await sharp(bytes).metadata();
    if (meta.format !== 'jpeg') {
      throw new Error(`decoded as ${meta.format}`);
    }
    ({ width, height } = meta);
  } catch (err) {
    throw new ImageRejectedError('corrupt', `damaged JPEG: ${(err as Error).message}`);
  }
  if (!width || !height) {
    throw new ImageRejectedError('corrupt', 'damaged JPEG: no image size in its header');
  }
  const tail = bytes.subarray(Math.max(0, bytes.length - EOI_WINDOW));
  if (tail.lastIndexOf(Buffer.from([0xff, 0xd9])) === -1) {
    throw new ImageRejectedError('corrupt', 'truncated JPEG: no end-of-image marker');
  }
  return { width, height };
}
