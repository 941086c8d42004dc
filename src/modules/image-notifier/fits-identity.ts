import { objectName, type ImageDetails } from '../../common/image-details.js';
import type { FitsValue } from './fits-reader.js';

/** What a FITS header says the image shows and how it was taken. */
export interface FitsIdentity {
  /** `OBJECT`, when it is a usable name (1 to 100 visible characters). */
  object?: string;
  /** `TELESCOP`, `INSTRUME`, `FILTER`, `DATE-OBS`, when present (empty otherwise). */
  details?: ImageDetails;
}

const DETAIL_CARDS: [keyof ImageDetails, string][] = [
  ['telescope', 'TELESCOP'],
  ['camera', 'INSTRUME'],
  ['filter', 'FILTER'],
  ['dateObs', 'DATE-OBS'],
];

/** `OBJECT` and the kit's cards of a header; cards that are not text, blank or too long are left out. */
export function fitsIdentity(header: ReadonlyMap<string, FitsValue>): FitsIdentity {
  const identity: FitsIdentity = {};
  const object = objectName(header.get('OBJECT'));
  if (object !== undefined) {
    identity.object = object;
  }
  const details: ImageDetails = {};
  for (const [field, keyword] of DETAIL_CARDS) {
    // The same rule as OBJECT: a card is at most 68 characters anyway.
    const value = objectName(header.get(keyword));
    if (value !== undefined) {
      details[field] = value;
    }
  }
  if (Object.keys(details).length > 0) {
    identity.details = details;
  }
  return identity;
}
