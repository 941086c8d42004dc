import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const VIEWER = new URL('./viewer/', import.meta.url);
const LANGUAGES = ['en', 'fr', 'de', 'es', 'it'];
/** The files whose words the catalogues hold: the viewer, the lobby and the wall. */
const SOURCES = [
  'index.html', 'viewer.js', 'session.js', 'i18n.js', 'secure-origin.js', 'switcher.js',
  'lobby.html', 'lobby.js', 'wall.html', 'wall.js', 'scopes-feed.js',
];
/** The object catalogue's type keys: the object card shows them (`type.<key>`). */
const OBJECT_TYPES = [
  'emission-nebula', 'reflection-nebula', 'planetary-nebula', 'supernova-remnant', 'dark-nebula', 'hii-region',
  'open-cluster', 'globular-cluster', 'star-cloud', 'asterism', 'double-star', 'star', 'galaxy', 'spiral-galaxy',
  'barred-spiral-galaxy', 'elliptical-galaxy', 'lenticular-galaxy', 'irregular-galaxy', 'dwarf-galaxy', 'galaxy-pair',
  'galaxy-group', 'cluster-with-nebula', 'nebula', 'planet', 'dwarf-planet', 'moon', 'sun',
];
/** Keys held for code on its way (the object card, the waiting screen): not looked for in the sources. */
const RESERVED = new Set(OBJECT_TYPES.map((type) => `type.${type}`));

function catalogue(lang: string): Record<string, string> {
  return JSON.parse(readFileSync(new URL(`i18n-${lang}.json`, VIEWER), 'utf8')) as Record<string, string>;
}

/** Keys the viewer's sources use: t('key', ...) calls and data-i18n / data-i18n-<attribute> attributes. */
function usedKeys(): Set<string> {
  const used = new Set<string>();
  for (const file of SOURCES) {
    const text = readFileSync(new URL(file, VIEWER), 'utf8');
    for (const match of text.matchAll(/\bt\(\s*'([^']+)'/g)) {
      used.add(match[1]);
    }
    for (const match of text.matchAll(/\bdata-i18n(?:-[a-z-]+)?="([^"]+)"/g)) {
      used.add(match[1]);
    }
    // A key chosen by a condition: t(cond ? 'a.b' : 'c.d').
    for (const match of text.matchAll(/\bt\([^;]*?\?\s*'([^']+)'\s*:\s*'([^']+)'\)/g)) {
      used.add(match[1]).add(match[2]);
    }
  }
  return used;
}

const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('the viewer catalogues (i18n-<lang>.json)', () => {
  const english = catalogue('en');

  it('every key the viewer uses is in English, and every English key is used (or held for the object card and the waiting screen)', () => {
    const used = usedKeys();
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((key) => !(key in english)), 'missing keys').toEqual([]);
    expect(Object.keys(english).filter((key) => !used.has(key) && !RESERVED.has(key)), 'unused keys').toEqual([]);
  });

  it('holds every object type and the waiting-screen text', () => {
    expect([...RESERVED].filter((key) => !(key in english))).toEqual([]);
  });

  it.each(LANGUAGES.slice(1))('%s has exactly the English keys, each translated, with the same {placeholders}', (lang) => {
    const entries = catalogue(lang);
    expect(Object.keys(entries).filter((key) => !(key in english)), 'keys English does not have').toEqual([]);
    expect(Object.keys(english).filter((key) => !(key in entries)), 'missing keys').toEqual([]);
    for (const [key, text] of Object.entries(entries)) {
      expect(typeof text === 'string' && text.trim() !== '', `${lang}: ${key} is empty`).toBe(true);
      expect(placeholders(text), `${lang}: ${key}`).toEqual(placeholders(english[key]));
    }
  });
});
