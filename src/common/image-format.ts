/** The image formats the service takes in. It always publishes JPEG. */
export type ImageFormat = 'jpeg' | 'png' | 'tiff' | 'fits';

/** The media type (`Content-Type`) of each format, as `PUT /api/image` accepts them. */
export const MEDIA_TYPES: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  tiff: 'image/tiff',
  fits: 'image/fits',
};

/** Other media types accepted for a format (RFC 4047 registers both for FITS). */
const MEDIA_TYPE_ALIASES: Record<string, ImageFormat> = { 'application/fits': 'fits' };
/** Unregistered names that clients send anyway: taken, but not advertised. */
const TOLERATED_MEDIA_TYPES: Record<string, ImageFormat> = { 'image/jpg': 'jpeg' };

/** Each format in words, for messages ("the body is a JPEG image"). */
export const FORMAT_NAMES: Record<ImageFormat, string> = { jpeg: 'a JPEG image', png: 'a PNG image', tiff: 'a TIFF image', fits: 'a FITS file' };

/** Well-known signatures of what people send by mistake, and what to do about each. */
const OTHER_SIGNATURES: { at: number; bytes: Buffer; what: string }[] = [
  { at: 0, bytes: Buffer.from([0x1f, 0x8b]), what: 'gzip-compressed data (a .gz file): decompress it first' },
  { at: 0, bytes: Buffer.from('BZh', 'latin1'), what: 'bzip2-compressed data (a .bz2 file): decompress it first' },
  { at: 0, bytes: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), what: 'xz-compressed data (a .xz file): decompress it first' },
  { at: 0, bytes: Buffer.from([0x50, 0x4b, 0x03, 0x04]), what: 'a ZIP archive: unpack it first' },
  { at: 0, bytes: Buffer.from('GIF8', 'latin1'), what: 'a GIF image, which is not taken' },
  { at: 8, bytes: Buffer.from('WEBP', 'latin1'), what: 'a WebP image, which is not taken' },
  { at: 4, bytes: Buffer.from('ftyp', 'latin1'), what: 'a HEIF or AVIF image, which is not taken' },
];

/** Every media type `PUT /api/image` accepts. */
export const ACCEPTED_MEDIA_TYPES: readonly string[] = [...Object.values(MEDIA_TYPES), ...Object.keys(MEDIA_TYPE_ALIASES)];

/** A FITS file starts with its first header card, `SIMPLE  =` (the reader checks the value). */
const FITS_SIGNATURE = Buffer.from('SIMPLE  =', 'latin1');

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The format by the file's magic bytes (never by its name or declared type), or undefined. */
export function sniffImageFormat(bytes: Buffer): ImageFormat | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return 'jpeg';
  }
  if (bytes.length >= PNG_SIGNATURE.length && bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
    return 'png';
  }
  if (bytes.length >= FITS_SIGNATURE.length && bytes.subarray(0, FITS_SIGNATURE.length).equals(FITS_SIGNATURE)) {
    return 'fits';
  }
  if (bytes.length >= 4) {
    const order = bytes.toString('latin1', 0, 2);
    // 42: classic TIFF, 43: BigTIFF.
    const magic = order === 'II' ? bytes.readUInt16LE(2) : order === 'MM' ? bytes.readUInt16BE(2) : 0;
    if (magic === 42 || magic === 43) {
      return 'tiff';
    }
  }
  return undefined;
}

/** The format a media type names, or undefined for a type the service does not take. */
export function formatOfMediaType(mediaType: string): ImageFormat | undefined {
  // hasOwn: a Content-Type of "constructor" must not find Object's own properties.
  const alias = (table: Record<string, ImageFormat>): ImageFormat | undefined => (Object.hasOwn(table, mediaType) ? table[mediaType] : undefined);
  return (Object.keys(MEDIA_TYPES) as ImageFormat[]).find((f) => MEDIA_TYPES[f] === mediaType) ?? alias(MEDIA_TYPE_ALIASES) ?? alias(TOLERATED_MEDIA_TYPES);
}

/** Why bytes of no accepted format are refused, naming a compressed file or another image format when it is one. */
export function unknownFormatMessage(bytes: Buffer): string {
  const known = OTHER_SIGNATURES.find(({ at, bytes: sig }) => bytes.length >= at + sig.length && bytes.subarray(at, at + sig.length).equals(sig));
  const base = 'not a JPEG, PNG or TIFF image, nor a FITS file';
  return known === undefined ? `${base} (unknown file signature)` : `${base}: the body is ${known.what}`;
}
