/** Catalogue prefixes as spelled out or abbreviated, to the short form the keys use. */
const PREFIXES: Record<string, string> = {
  messier: 'm',
  m: 'm',
  caldwell: 'c',
  c: 'c',
  ngc: 'ngc',
  ic: 'ic',
  melotte: 'mel',
  mel: 'mel',
  collinder: 'cr',
  cr: 'cr',
  barnard: 'b',
  b: 'b',
  sh2: 'sh2',
  lbn: 'lbn',
  pgc: 'pgc',
  ugc: 'ugc',
};
// Longer prefixes first, so "mel22" is Melotte and not M + "el22".
const DESIGNATION = /^(messier|caldwell|melotte|collinder|barnard|sh2|ngc|lbn|pgc|ugc|mel|ic|cr|m|c|b)0*(\d+)([a-z]?)$/;
/** A designation at the start of a longer target name: "M31 Panel 2", "NGC7000 Ha". */
const LEADING_DESIGNATION = /^(messier|caldwell|ngc|ic|m|c)[\s_-]*0*(\d+)(?![\d])/;

function fold(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/&/g, ' and ')
    .trim()
    .replace(/^the\s+/, '');
}

/**
 * The lookup key of an object name: case, spaces, hyphens, punctuation and diacritics
 * ignored, catalogue prefixes shortened and leading zeros dropped
 * ("Messier 042", "m42", "M-42" → "m42"; "NGC 1976" → "ngc1976"; "Orion  Nebula" → "orionnebula").
 */
export function objectKey(name: string): string {
  const compact = fold(name).replace(/[^a-z0-9]/g, '');
  const match = DESIGNATION.exec(compact);
  return match ? `${PREFIXES[match[1]]}${match[2]}${match[3]}` : compact;
}

/** The key of the Messier, Caldwell, NGC or IC designation a longer name starts with, if any. */
export function leadingDesignationKey(name: string): string | undefined {
  const match = LEADING_DESIGNATION.exec(fold(name));
  return match ? `${PREFIXES[match[1]]}${match[2]}` : undefined;
}
