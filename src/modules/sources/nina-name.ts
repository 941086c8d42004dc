import { objectName } from '../../common/image-details.js';

/** `<Target>-<Filter>.fits`: the target may hold hyphens (`Sh2-155-Ha.fits`), the filter not. */
const NINA_NAME = /^(.+)-([^-]+)\.(?:fits?|fts)$/i;

/**
 * Filter names as astronomers' filter wheels call them: only a name ending in one of these
 * names a target (`live-stack.fits` or `M42-2024-01-05.fits` do not).
 */
const FILTERS = new Set(
  ['L', 'R', 'G', 'B', 'Lum', 'Luminance', 'Red', 'Green', 'Blue', 'RGB', 'LRGB', 'OSC', 'Clear', 'None', 'NoFilter', 'Ha', 'H', 'Hb', 'OIII', 'O3', 'SII', 'S2', 'HaOIII', 'HOO', 'SHO', 'UVIR', 'UVIRCut', 'IR', 'UV', 'CLS', 'LPro', 'LeNhance', 'LExtreme', 'LUltimate', 'DualBand', 'TriBand', 'QuadBand', 'NBZ', 'ALPT'].map(
    (name) => name.toLowerCase(),
  ),
);

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
  if (object === undefined || filter === undefined || !FILTERS.has(filter.toLowerCase().replace(/[\s_-]/g, ''))) {
    return undefined;
  }
  return { object, filter };
}
