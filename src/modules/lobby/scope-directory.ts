/** One scope as the lobby and the wall show it: an entry of `GET /api/scopes`. */
export interface ScopeListing {
  id: string;
  title: string | null;
  object: string | null;
  /** The version on screen; null before the scope's first image. */
  version: number | null;
  stackSize: number;
  /** Cumulated exposure, seconds. */
  exposure: number;
  viewers: number;
  /** ISO time of the last image; null before the first. */
  updated: string | null;
  /** URL of a tile of at most 256 px of the current version; null without one. */
  thumbnail: string | null;
}

/** Where the lobby's feed reads the scopes, in the order the lobby shows them. */
export abstract class ScopeDirectory {
  abstract list(): ScopeListing[] | Promise<ScopeListing[]>;
}
