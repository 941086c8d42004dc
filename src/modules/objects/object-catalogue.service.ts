import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { leadingDesignationKey, objectKey } from './object-name.js';

/** What `GET /api/objects/<name>` answers; fields unknown for an object are absent. */
export interface CatalogueObject {
  /** "M42", "C14", "NGC 7000", "Moon". */
  id: string;
  /** Common names, the most used first (may be empty). */
  names: string[];
  /** The type in plain English ("emission nebula"). */
  type: string;
  /** The type as a stable key ("emission-nebula"), for translations. */
  typeKey: string;
  /** Every catalogue designation, `id` first ("M42", "NGC 1976", "LBN 974"). */
  designations: string[];
  constellation?: string;
  /** Apparent visual magnitude (blue where no visual one is known). */
  magnitude?: number;
  /** Apparent size in arcminutes: [major, minor] or [diameter]. */
  sizeArcmin?: number[];
  /** Distance in light-years (for galaxies rounded to 3 significant digits). */
  distanceLy?: number;
}

/** A catalogue answer ready to send: the object, its JSON and a strong ETag of that JSON. */
export interface CatalogueEntry {
  object: CatalogueObject;
  json: string;
  etag: string;
}

interface CatalogueFile {
  types: Record<string, string>;
  objects: {
    id: string;
    designations: string[];
    names: string[];
    aliases?: string[];
    type: string;
    constellation?: string;
    magnitude?: number;
    sizeArcmin?: number[];
    distanceLy?: number;
  }[];
}

const CATALOGUE_FILE = new URL('./catalogue.json', import.meta.url);

/**
 * The built-in offline object catalogue (Messier, Caldwell, bright and named NGC/IC
 * objects, the Sun, the Moon and the planets), read once on first use from
 * catalogue.json (made by scripts/make-catalogue.mjs; sources in CATALOGUE.md).
 */
@Injectable()
export class ObjectCatalogue {
  private index?: Map<string, CatalogueEntry>;

  /** The object a name designates, in any usual spelling ("M 42", "ngc1976", "Orion Nebula"). */
  lookup(name: string): CatalogueObject | undefined {
    return this.entry(name)?.object;
  }

  /** Like {@link lookup}, with the JSON and ETag the route sends. */
  entry(name: string): CatalogueEntry | undefined {
    const index = this.loaded();
    const found = index.get(objectKey(name));
    if (found) {
      return found;
    }
    const leading = leadingDesignationKey(name);
    return leading === undefined ? undefined : index.get(leading);
  }

  /** How many objects the catalogue holds. */
  get size(): number {
    return new Set(this.loaded().values()).size;
  }

  private loaded(): Map<string, CatalogueEntry> {
    this.index ??= buildIndex(JSON.parse(readFileSync(CATALOGUE_FILE, 'utf8')) as CatalogueFile);
    return this.index;
  }
}

/** Every designation, name and alias as a key; on a shared name the earlier object wins (Messier first). */
function buildIndex(file: CatalogueFile): Map<string, CatalogueEntry> {
  const index = new Map<string, CatalogueEntry>();
  for (const { aliases = [], type, ...rest } of file.objects) {
    const object: CatalogueObject = {
      id: rest.id,
      names: rest.names,
      type: file.types[type] ?? type,
      typeKey: type,
      designations: rest.designations,
      constellation: rest.constellation,
      magnitude: rest.magnitude,
      sizeArcmin: rest.sizeArcmin,
      distanceLy: rest.distanceLy,
    };
    const json = JSON.stringify(object);
    const entry = { object, json, etag: `"${createHash('sha256').update(json).digest('base64url').slice(0, 27)}"` };
    for (const name of [rest.id, ...rest.designations, ...rest.names, ...aliases]) {
      const key = objectKey(name);
      if (key !== '' && !index.has(key)) {
        index.set(key, entry);
      }
    }
  }
  return index;
}
