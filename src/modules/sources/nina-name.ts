import { objectName } from '../../common/image-details.js';

/** `<Target>-<Filter>.fits`: the target may hold hyphens (`Sh2-155-Ha.fits`), the filter not. */
const NINA_NAME = /^(.+)-([^-]+)\.(?:fits?|fts)$/i;

/**
 * The target and filter a N.I.N.A. live-stack file's name gives (`M31-L.fits`: M31, L),
 * whose FITS header carries no `OBJECT` card; undefined for a name not of that form.
 */
export function ninaFileName(name: string): { object: string; filter: string } | undefined {
  const match = NINA_NAME.exec(name);
  if (!match) {
    return undefined;
  }
  const object = objectName(match[1]);
  const filter = objectName(match[2]);
  return object === undefined || filter === undefined ? undefined : { object, filter };
}
