import { crc32 } from 'node:zlib';
import { ImageRejectedError } from './image-rejected.error.js';

const SIGNATURE_LENGTH = 8;

/**
 * Refuses a PNG that is not complete: walks the chunks from the signature to IEND and
 * checks each CRC. libpng decodes a file cut just before its IEND without a word, and a
 * file being overwritten in place can mix new and old bytes; both fail here.
 */
export function assertCompletePng(bytes: Buffer): void {
  let at = SIGNATURE_LENGTH;
  for (;;) {
    if (at + 12 > bytes.length) {
      throw new ImageRejectedError('corrupt', 'truncated PNG: it ends before its IEND chunk');
    }
    const length = bytes.readUInt32BE(at);
    const end = at + 12 + length;
    if (length > 0x7fffffff || end > bytes.length) {
      throw new ImageRejectedError('corrupt', `truncated PNG: a chunk of ${length} bytes runs past the end of the file`);
    }
    const typeAndData = bytes.subarray(at + 4, at + 8 + length);
    if (crc32(typeAndData) !== bytes.readUInt32BE(at + 8 + length)) {
      throw new ImageRejectedError('corrupt', `damaged PNG: bad checksum in chunk "${typeAndData.toString('latin1', 0, 4)}"`);
    }
    if (typeAndData.toString('latin1', 0, 4) === 'IEND') {
      return;
    }
    at = end;
  }
}
