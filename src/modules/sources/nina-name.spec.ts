import { describe, expect, it } from 'vitest';
import { ninaFileName } from './nina-name.js';

describe('ninaFileName', () => {
  it.each([
    ['M31-L.fits', { object: 'M31', filter: 'L' }],
    ['NGC 7000-Ha.fit', { object: 'NGC 7000', filter: 'Ha' }],
    ['Sh2-155-OIII.FITS', { object: 'Sh2-155', filter: 'OIII' }],
    ['M 42-RGB.fts', { object: 'M 42', filter: 'RGB' }],
  ])('%s names its target and filter', (name, expected) => {
    expect(ninaFileName(name)).toEqual(expected);
  });

  it.each(['stack.fits', 'M31-L.jpg', '-L.fits', 'M31-.fits', `${'x'.repeat(101)}-L.fits`, 'live-stack.fits', 'M42-2024-01-05.fits'])('%s names nothing', (name) => {
    expect(ninaFileName(name)).toBeUndefined();
  });
});
