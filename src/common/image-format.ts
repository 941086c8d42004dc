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
  return (Object.keys(MEDIA_TYPES) as ImageFormat[]).find((f) => MEDIA_TYPES[f] === mediaType) ?? MEDIA_TYPE_ALIASES[mediaType];
}
