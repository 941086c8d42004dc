/** What the allowed object names are, worded for an error message. */
export const OBJECT_NAME_RULE = '1 to 100 visible characters (no control characters)';

/** What an image tells about itself besides the metrics (a FITS header's cards). */
export interface ImageDetails {
  /** `TELESCOP` */
  telescope?: string;
  /** `INSTRUME` */
  camera?: string;
  /** `FILTER` */
  filter?: string;
  /** `DATE-OBS`, as written in the header */
  dateObs?: string;
}

/**
 * The object name as it is to be shown (trimmed), or undefined when it is not 1 to 100
 * visible characters: empty, too long, or holding control or format characters.
 */
export function objectName(value: unknown): string | undefined {
  if (typeof value !== 'string') {
    return undefined;
  }
  const name = value.trim();
  const length = [...name].length;
  return length >= 1 && length <= 100 && !/[\p{C}]/u.test(name) ? name : undefined;
}
