import { Injectable } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** One scope as `GET /api/scopes`, `/status` and the lobby describe it. */
export interface ScopeSummary {
  id: string;
  /** The display name (`POST /s/<id>/api/scope`); the id when none was set. */
  title: string;
  /** The object of the image shown, or the target set; null when none is known. */
  object: string | null;
  /** Version of the image shown (`/s/<id>/v/<version>/`); null while the waiting image is shown. */
  version: number | null;
  stackSize: number;
  /** Total exposure, as data.json's EXPO (`H:MM:SS`). */
  exposure: string;
  viewers: number;
  /** Time of the last image (ISO 8601); null when none was published. */
  updated: string | null;
  /** URL of a small image (at most 256 px) of the current version; null when there is none. */
  thumbnail: string | null;
}

/** The scopes' request front: true when the request (or upgrade) was taken over. */
export interface ScopeRoutes {
  request(req: IncomingMessage, res: ServerResponse): boolean;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/**
 * Where the scopes module (the top layer) plugs into the lower ones without an import
 * running up: the request front asks {@link routes} first, `/status` lists
 * {@link list}, and `ImageNotifier.scope()` calls {@link open}. Unset in a scope's own app.
 */
@Injectable()
export class ScopeHooks {
  routes: ScopeRoutes | undefined;
  list: (() => ScopeSummary[]) | undefined;
  /** Resolves to the ImageNotifier of scope `id`, created if need be. */
  open: ((id: string) => Promise<unknown>) | undefined;
  /** Main's STOP and START: every other scope stops (its viewers told) and starts with it. */
  stopAll: (() => Promise<void>) | undefined;
  startAll: (() => Promise<void>) | undefined;
}
