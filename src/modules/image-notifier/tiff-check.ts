import { ImageRejectedError } from './image-rejected.error.js';

const STRIP_OFFSETS = 273;
const STRIP_BYTE_COUNTS = 279;
const TILE_OFFSETS = 324;
const TILE_BYTE_COUNTS = 325;

/** Bytes of one value of each TIFF field type (1 BYTE … 16 LONG8, 17 SLONG8, 18 IFD8). */
const TYPE_SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

class TiffReader {
  readonly little: boolean;
  readonly big: boolean;

  constructor(private readonly bytes: Buffer) {
    this.little = bytes.toString('latin1', 0, 2) === 'II';
    this.big = this.u16(2) === 43;
  }

  u16(at: number): number {
    return this.little ? this.bytes.readUInt16LE(at) : this.bytes.readUInt16BE(at);
  }

  u32(at: number): number {
    return this.little ? this.bytes.readUInt32LE(at) : this.bytes.readUInt32BE(at);
  }

  u64(at: number): number {
    return Number(this.little ? this.bytes.readBigUInt64LE(at) : this.bytes.readBigUInt64BE(at));
  }

  /** An offset-sized field: 4 bytes in classic TIFF, 8 in BigTIFF. */
  offset(at: number): number {
    return this.big ? this.u64(at) : this.u32(at);
  }

  value(type: number, at: number): number {
    switch (TYPE_SIZES[type]) {
      case 2:
        return this.u16(at);
      case 4:
        return this.u32(at);
      case 8:
        return this.u64(at);
      default:
        return this.bytes[at];
    }
  }
}

/**
 * Refuses a TIFF whose first image is not all in the file: the header, the first IFD,
 * its values and every strip (or tile) it points to must lie within the bytes. A file
 * cut short by a stacker that writes the IFD first and the pixels after is otherwise
 * decoded by libvips with the missing strips silently blank.
 */
export function assertCompleteTiff(bytes: Buffer): void {
  const truncated = (what: string): ImageRejectedError => new ImageRejectedError('corrupt', `truncated TIFF: ${what}`);
  if (bytes.length < 16) {
    throw truncated('no complete header');
  }
  const r = new TiffReader(bytes);
  const countSize = r.big ? 8 : 2;
  const entrySize = r.big ? 20 : 12;
  const inlineSize = r.big ? 8 : 4;
  const ifd = r.offset(r.big ? 8 : 4);
  if (ifd < 8 || ifd + countSize > bytes.length) {
    throw truncated(`its directory at byte ${ifd} is past the end of the ${bytes.length}-byte file`);
  }
  const count = r.big ? r.u64(ifd) : r.u16(ifd);
  if (ifd + countSize + count * entrySize > bytes.length) {
    throw truncated('its directory runs past the end of the file');
  }
  const fields = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const entry = ifd + countSize + i * entrySize;
    const tag = r.u16(entry);
    const type = r.u16(entry + 2);
    const n = r.big ? r.u64(entry + 4) : r.u32(entry + 4);
    const size = TYPE_SIZES[type] ?? 1;
    const valueField = entry + 4 + (r.big ? 8 : 4);
    const data = n * size <= inlineSize ? valueField : r.offset(valueField);
    // Every value list must be in the file, not only the pixel tables: a writer that puts
    // the directory last may be cut inside it.
    if (data + n * size > bytes.length) {
      throw truncated(`the values of tag ${tag} run past the end of the file`);
    }
    if (tag === STRIP_OFFSETS || tag === STRIP_BYTE_COUNTS || tag === TILE_OFFSETS || tag === TILE_BYTE_COUNTS) {
      fields.set(tag, Array.from({ length: n }, (_, k) => r.value(type, data + k * size)));
    }
  }
  const offsets = fields.get(STRIP_OFFSETS) ?? fields.get(TILE_OFFSETS);
  const counts = fields.get(STRIP_BYTE_COUNTS) ?? fields.get(TILE_BYTE_COUNTS);
  if (!offsets || !counts || offsets.length !== counts.length || offsets.length === 0) {
    throw new ImageRejectedError('corrupt', 'damaged TIFF: no strip or tile table in its first directory');
  }
  offsets.forEach((offset, k) => {
    if (offset + counts[k] > bytes.length) {
      throw truncated(`pixel block ${k + 1} of ${offsets.length} ends at byte ${offset + counts[k]}, past the end of the ${bytes.length}-byte file`);
    }
  });
}
