import { describe, expect, it } from 'vitest';
import { formatExposure } from './exposure-format.js';

describe('formatExposure', () => {
  it.each([
    [0, '0:00:00'],
    [59.4, '0:00:59'],
    [59.5, '0:01:00'],
    [360, '0:06:00'],
    [3725, '1:02:05'],
    [86_399, '23:59:59'],
    [93_784, '26:03:04'],
    [-5, '0:00:00'],
  ])('%s s -> %s', (seconds, expected) => {
    expect(formatExposure(seconds)).toBe(expected);
  });
});
