import { describe, expect, it } from 'vitest';
import { escapeWifiField, wifiQrText } from './wifi-qr.js';

describe('wifiQrText', () => {
  it('escapes \\ ; , : and " with a backslash, and nothing else', () => {
    expect(escapeWifiField('a\\b;c,d:e"f g\'h')).toBe('a\\\\b\\;c\\,d\\:e\\"f g\'h');
  });

  it('writes WPA with a password and nopass without one', () => {
    expect(wifiQrText('Star;Party', 'pass:word,1')).toBe('WIFI:T:WPA;S:Star\\;Party;P:pass\\:word\\,1;;');
    expect(wifiQrText('Open "sky"')).toBe('WIFI:T:nopass;S:Open \\"sky\\";;');
  });
});
