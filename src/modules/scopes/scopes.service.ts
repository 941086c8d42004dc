import {
  HttpException,
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type INestApplication,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import { Gauge } from 'prom-client';
import { readdir, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import {
  IMAGE_SERVER_OPTIONS,
  MAIN_SCOPE,
  SCOPE_ID_PATTERN,
  scopeRedisNamespace,
  type ImageServerOptions,
} from '../../config/image-server-options.js';
import { ACCEPTED_MEDIA_TYPES, formatOfMediaType } from '../../common/image-format.js';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { ViewerWsAdapter } from '../../gateway/viewer-ws.adapter.js';
import { ControlGuard } from '../../shared/control-guard/control.guard.js';
import { ScopeHooks, type ScopeRoutes, type ScopeSummary } from '../../shared/scope-hooks/scope-hooks.js';
import { ScopeTitle } from '../../shared/scope-hooks/scope-title.js';
import { ClusterService } from '../cluster/cluster.service.js';
import { ImageNotifier } from '../image-notifier/image-notifier.service.js';
import { ServerLifecycle } from '../lifecycle/server-lifecycle.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { formatExposure } from '../web-assets/exposure-format.js';
import { DZI_FILE } from '../web-assets/pyramid.js';
import { VERSIONS_FOLDER } from '../web-assets/version-store.js';
import { WebAssetsService } from '../web-assets/web-assets.service.js';
import { SCOPE_APP_FACTORY, type ScopeAppFactory } from './scope-app-factory.js';
import { ScopeRegistry } from './scope-registry.js';

export type { ScopeSummary } from '../../shared/scope-hooks/scope-hooks.js';

/** Scopes' folders live under `<web folder>/s/<id>/` (and `<work folder>/s/<id>/`). */
export const SCOPES_FOLDER = 's';
/** The thumbnail is the pyramid's level at most this wide and high. */
const THUMBNAIL_EDGE = 256;
/** Changes of one scope within this window make one "scopes changed" event. */
const CHANGE_COALESCE_MS = 100;

/** One scope's app and the parts of it the list reads. */
interface Scope {
  id: string;
  /** Undefined for `main`, the app this service lives in. */
  app: INestApplication | undefined;
  server: Server | undefined;
  notifier: ImageNotifier;
  assets: WebAssetsService;
  broadcast: BroadcastService;
  title: ScopeTitle;
  guard: ControlGuard;
  webFolder: string;
  workFolder: string;
  unwatch: (() => void)[];
  thumbnail: { version: number; url: string | null } | undefined;
  changeTimer: NodeJS.Timeout | undefined;
}

/** The parsed `/s/<id><rest>` of a request, or undefined for any other path. */
interface ScopePath {
  id: string;
  /** The path after the id (`/api/image`), '' for `/s/<id>` itself, with the query. */
  rest: string;
  /** Whether the id matches {@link SCOPE_ID_PATTERN}. */
  valid: boolean;
}

function scopePath(url: string): ScopePath | undefined {
  if (!url.startsWith('/s/')) {
    return undefined;
  }
  const end = url.slice(3).search(/[/?]/);
  const id = end === -1 ? url.slice(3) : url.slice(3, 3 + end);
  const rest = end === -1 ? '' : url.slice(3 + end);
  return { id, rest, valid: SCOPE_ID_PATTERN.test(id) };
}

function answer(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ statusCode: status, message });
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function badId(id: string): string {
  return `the scope id ${JSON.stringify(id.slice(0, 40))} is invalid: expected ${SCOPE_ID_PATTERN.source} (lower-case letters, digits and -, at most 32)`;
}

/** Width and height of a version's pyramid, from its `image.dzi`. */
async function pyramidSize(webFolder: string, version: number): Promise<{ width: number; height: number } | undefined> {
  try {
    const xml = await readFile(join(webFolder, VERSIONS_FOLDER, String(version), DZI_FILE), 'utf8');
    const width = Number(/Width="(\d+)"/.exec(xml)?.[1]);
    const height = Number(/Height="(\d+)"/.exec(xml)?.[1]);
    return width > 0 && height > 0 ? { width, height } : undefined;
  } catch {
    return undefined;
  }
}

/** The Deep Zoom level whose image fits in `edge` pixels (level L is the full size halved maxLevel - L times). */
export function thumbnailLevel(width: number, height: number, edge: number): number {
  const largest = Math.max(width, height);
  const maxLevel = Math.ceil(Math.log2(largest));
  let halvings = 0;
  while (Math.ceil(largest / 2 ** halvings) > edge) {
    halvings++;
  }
  return Math.max(0, maxLevel - halvings);
}

/**
 * Several telescopes on one service. `main` is this app (the root, also `/s/main/`); every
 * other scope is an app of its own, ImageServerModule with `scopeId` and its folders
 * under `s/<id>/`, not listening: the request front hands it `/s/<id>/...` requests and
 * `/s/<id>/ws` upgrades with the prefix taken off. So each scope has its own versions,
 * pyramids, data.json, history, viewers and notices.
 *
 * For a lobby: {@link list} and {@link watch} ("scopes changed": a publish or metrics, a
 * viewer come or gone, a title or object set, a scope created or deleted).
 */
@Injectable()
export class ScopesService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, ScopeRoutes {
  private readonly logger = new Logger(ScopesService.name);
  private readonly scopes = new Map<string, Scope>();
  private readonly creating = new Map<string, Promise<Scope>>();
  private readonly watchers = new Set<(ids: string[]) => void>();
  private readonly enabled: boolean;
  private registry: ScopeRegistry | undefined;
  private main: Scope | undefined;
  private closing = false;
  /** Time of each scope creation, ms (bench). */
  readonly creationMs: number[] = [];

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    @Inject(SCOPE_APP_FACTORY) private readonly factory: ScopeAppFactory,
    private readonly hooks: ScopeHooks,
    private readonly notifier: ImageNotifier,
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
    private readonly title: ScopeTitle,
    private readonly guard: ControlGuard,
    private readonly cluster: ClusterService,
    private readonly lifecycle: ServerLifecycle,
    metrics: MetricsService,
  ) {
    // A scope's own app serves no scopes (no grand-children).
    this.enabled = options.scopeId === undefined;
    if (this.enabled) {
      metrics.gauge('stackcast_scopes', 'Scopes live on this process, main included', () => this.scopes.size);
      const scopes = this.scopes;
      new Gauge({
        name: 'stackcast_scope_viewers',
        help: 'Viewers connected to each scope\'s /ws on this process',
        labelNames: ['scope'],
        registers: [metrics.registry],
        collect() {
          this.reset();
          for (const [id, scope] of scopes) {
            this.set({ scope: id }, scope.broadcast.count);
          }
        },
      });
    }
  }

  onModuleInit(): void {
    if (!this.enabled) {
      return;
    }
    this.main = this.describe(MAIN_SCOPE, undefined, {
      notifier: this.notifier,
      assets: this.assets,
      broadcast: this.broadcast,
      title: this.title,
      guard: this.guard,
      webFolder: this.options.webFolder,
      workFolder: this.options.workFolder,
    });
    this.scopes.set(MAIN_SCOPE, this.main);
    this.hooks.routes = this;
    this.hooks.list = () => this.list();
    this.hooks.open = async (id) => (await this.open(id)).notifier;
    this.hooks.stopAll = () => this.eachChild((lifecycle) => lifecycle.stop());
    this.hooks.startAll = () => this.eachChild((lifecycle) => lifecycle.start());
  }

  private async eachChild(command: (lifecycle: ServerLifecycle) => Promise<unknown>): Promise<void> {
    const children = [...this.scopes.values()].filter((s) => s.app !== undefined);
    const results = await Promise.allSettled(children.map((s) => command((s.app as INestApplication).get(ServerLifecycle))));
    results.forEach((r, i) => r.status === 'rejected' && this.logger.error(`scope "${children[i].id}": ${(r.reason as Error).message}`));
  }

  /** Brings back the scopes found on disk (and those Redis knows), up to `maxScopes`. */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) {
      return;
    }
    if (this.options.redisUrl !== undefined) {
      this.registry = new ScopeRegistry(this.options.redisUrl, this.options.redisNamespace, this.cluster.replicaId);
      const follow = (id: string, created: boolean): void => {
        if (!SCOPE_ID_PATTERN.test(id) || id === MAIN_SCOPE || this.closing || this.scopes.has(id) === created) {
          return;
        }
        const done = created ? this.open(id, { announce: false }).then(() => undefined) : this.remove(id, { announce: false });
        done.catch((err: Error) => this.logger.warn(`scope "${id}" ${created ? 'created' : 'deleted'} by another replica: ${err.message}`));
      };
      // In the background: a replica starts with Redis down; once it answers, the scopes it knows are made here.
      this.registry.start(({ id, created }) => follow(id, created), (ids) => ids.sort().forEach((id) => follow(id, true)));
    }
    const onDisk = await readdir(join(this.options.webFolder, SCOPES_FOLDER)).catch(() => [] as string[]);
    const ids = onDisk.filter((id) => SCOPE_ID_PATTERN.test(id) && id !== MAIN_SCOPE).sort();
    const kept = ids.slice(0, this.options.maxScopes - 1);
    if (kept.length < ids.length) {
      this.logger.warn(`MAX_SCOPES is ${this.options.maxScopes}: scopes ${ids.slice(kept.length).join(', ')} are not brought back (their files stay)`);
    }
    for (const id of kept) {
      try {
        await this.open(id, { announce: false });
      } catch (err) {
        this.logger.error(`scope "${id}" could not be brought back: ${(err as Error).message}`);
      }
    }
  }

  /** Each scope's STOP (its viewers told) and close, alongside main's own. */
  async beforeApplicationShutdown(): Promise<void> {
    if (!this.enabled) {
      return;
    }
    this.closing = true;
    await Promise.allSettled([...this.creating.values()]);
    const children = [...this.scopes.values()].filter((s) => s.app !== undefined);
    await Promise.allSettled(children.map((s) => this.closeApp(s)));
    await this.registry?.close();
  }

  /** Every live scope, `main` first, then by id. */
  list(): ScopeSummary[] {
    const others = [...this.scopes.keys()].filter((id) => id !== MAIN_SCOPE).sort();
    return [MAIN_SCOPE, ...others].flatMap((id) => {
      const scope = this.scopes.get(id);
      return scope === undefined ? [] : [this.summary(scope)];
    });
  }

  /** Ids of live scopes, `main` included. */
  ids(): string[] {
    return [...this.scopes.keys()];
  }

  /**
   * Calls `listener` with the ids of the scopes that changed (a deleted one included),
   * at most every 100 ms per scope. Returns the function that stops it.
   */
  watch(listener: (ids: string[]) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  /** The ImageNotifier of scope `id`: an existing one, or a new scope (HttpException 409 beyond `maxScopes`). */
  async notifierOf(id: string): Promise<ImageNotifier> {
    return (await this.open(id)).notifier;
  }

  // ------------------------------------------------------------------ routes

  /** Called by the request front ahead of everything: true when the request was taken over. */
  request(req: IncomingMessage, res: ServerResponse): boolean {
    const path = scopePath(req.url ?? '');
    if (path === undefined) {
      return false;
    }
    if (!path.valid) {
      answer(res, 400, badId(path.id));
      return true;
    }
    if (path.rest === '' || path.rest.startsWith('?')) {
      this.scopeRoot(req, res, path);
      return true;
    }
    if (path.id === MAIN_SCOPE) {
      // Served as the root is, by this app.
      req.url = path.rest;
      return false;
    }
    const live = this.scopes.get(path.id);
    if (live !== undefined) {
      this.handOn(live, req, res, path.rest);
      return true;
    }
    void this.later(res, this.reach(req, path)).then((scope) => scope !== undefined && this.handOn(scope, req, res, path.rest));
    return true;
  }

  /** Called by the request front for upgrades: `/s/<id>/ws` goes to that scope's app. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = scopePath(req.url ?? '');
    if (path === undefined) {
      return false;
    }
    if (path.valid && path.id === MAIN_SCOPE) {
      req.url = path.rest;
      return false;
    }
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!path.valid) {
      refuse('400 Bad Request');
      return true;
    }
    const hand = (scope: Scope | undefined): void => {
      if (scope?.server === undefined) {
        refuse('404 Not Found');
        return;
      }
      req.url = path.rest;
      scope.server.emit('upgrade', req, socket, head);
    };
    const live = this.scopes.get(path.id);
    if (live !== undefined) {
      hand(live);
      return true;
    }
    // A scope another replica created: made here on demand.
    (this.registry?.has(path.id) ?? Promise.resolve(false))
      .then((known) => (known ? this.open(path.id, { announce: false }) : undefined))
      .then(hand, () => refuse('503 Service Unavailable'));
    return true;
  }

  /** `/s/<id>`: DELETE removes the scope; GET redirects to `/s/<id>/` (the viewer's relative URLs need it). */
  private scopeRoot(req: IncomingMessage, res: ServerResponse, path: ScopePath): void {
    if (req.method === 'DELETE') {
      void this.later(res, this.deleteRoute(req, path.id)).then((done) => done === true && answer(res, 200, `scope "${path.id}" deleted`));
      return;
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && (this.scopes.has(path.id) || path.id === MAIN_SCOPE)) {
      res.writeHead(301, { Location: `/s/${path.id}/${path.rest}`, 'Content-Length': 0 }).end();
      return;
    }
    answer(res, 404, `no scope "${path.id}" (DELETE /s/<id> removes a scope, GET /s/<id>/ shows it)`);
  }

  private async deleteRoute(req: IncomingMessage, id: string): Promise<boolean> {
    const scope = this.scopes.get(id) ?? (this.creating.has(id) ? await this.creating.get(id) : undefined);
    if (scope === undefined) {
      throw new HttpException(`no scope "${id}": the live scopes are ${this.ids().join(', ')}`, 404);
    }
    scope.guard.authorize(req);
    if (id === MAIN_SCOPE) {
      throw new HttpException('the main scope cannot be deleted (it is the root); STOP it with POST /api/server/stop', 409);
    }
    await this.remove(id);
    return true;
  }

  /** The scope a request names but this process has not live: created by a publish, or one another replica knows. */
  private async reach(req: IncomingMessage, path: ScopePath): Promise<Scope | undefined> {
    const publish = req.method === 'PUT' && /^\/api\/image(?:\?|$)/.test(path.rest);
    if (publish) {
      // The token and the type are checked before anything is created.
      new ControlGuard({ ...this.options, scopeId: path.id }).authorize(req);
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (formatOfMediaType(type) === undefined) {
        throw new HttpException(`Content-Type must be one of ${ACCEPTED_MEDIA_TYPES.join(', ')}, got "${type || '(none)'}"`, 415);
      }
      return this.open(path.id);
    }
    if (await (this.registry?.has(path.id) ?? Promise.resolve(false))) {
      return this.open(path.id, { announce: false });
    }
    throw new HttpException(`no scope "${path.id}": a publish (PUT /s/${path.id}/api/image) creates it; the live scopes are ${this.ids().join(', ')}`, 404);
  }

  /** Runs `work`; an HttpException (or any error) is answered on `res`. Resolves to undefined when it was. */
  private async later<T>(res: ServerResponse, work: Promise<T>): Promise<T | undefined> {
    try {
      return await work;
    } catch (err) {
      if (!res.headersSent) {
        if (err instanceof HttpException) {
          const response = err.getResponse();
          const message = typeof response === 'string' ? response : (response as { message?: unknown }).message;
          answer(res, err.getStatus(), typeof message === 'string' ? message : err.message);
        } else {
          this.logger.error(`scope request failed: ${(err as Error).stack ?? String(err)}`);
          answer(res, 500, 'the scope could not be reached: see the log');
        }
      }
      return undefined;
    }
  }

  private handOn(scope: Scope, req: IncomingMessage, res: ServerResponse, rest: string): void {
    if (scope.server === undefined) {
      answer(res, 404, `no scope "${scope.id}"`);
      return;
    }
    req.url = rest;
    scope.server.emit('request', req, res);
  }

  // ------------------------------------------------------------------ create and delete

  /** The live scope `id`, or a new one; one creation per id however many ask at once. */
  private open(id: string, { announce = true }: { announce?: boolean } = {}): Promise<Scope> {
    const live = this.scopes.get(id);
    if (live !== undefined) {
      return Promise.resolve(live);
    }
    const pending = this.creating.get(id);
    if (pending !== undefined) {
      return pending;
    }
    if (this.closing) {
      return Promise.reject(new HttpException('stackcast is shutting down', 503));
    }
    if (this.scopes.size + this.creating.size >= this.options.maxScopes) {
      return Promise.reject(
        new HttpException(`MAX_SCOPES is ${this.options.maxScopes} (main included) and all are live: delete one (DELETE /s/<id>) or raise MAX_SCOPES; scope "${id}" was not created`, 409),
      );
    }
    const creation = this.create(id, announce).finally(() => this.creating.delete(id));
    this.creating.set(id, creation);
    return creation;
  }

  private folders(id: string): { webFolder: string; workFolder: string } {
    const webFolder = join(this.options.webFolder, SCOPES_FOLDER, id);
    // A dedicated web folder keeps its work folder apart; otherwise they are one.
    const workFolder = this.options.webFolder === this.options.workFolder ? webFolder : join(this.options.workFolder, SCOPES_FOLDER, id);
    return { webFolder, workFolder };
  }

  private async create(id: string, announce: boolean): Promise<Scope> {
    const began = performance.now();
    const { webFolder, workFolder } = this.folders(id);
    const options: Partial<ImageServerOptions> = {
      ...this.options,
      scopeId: id,
      webFolder,
      workFolder,
      listen: false,
      // The port this service serves on, for the scope's advertised URL and QR code.
      port: this.lifecycle.port,
      printQrCode: false,
      watchPath: undefined,
      demo: false,
      addressRefreshMs: 0,
      redisNamespace: scopeRedisNamespace(this.options.redisNamespace, id),
    };
    // No logger option: Nest's is process-wide, the parent's stays in place.
    const app = await NestFactory.create<NestExpressApplication>(this.factory(options), new ExpressAdapter(express()), { abortOnError: false });
    app.disable('x-powered-by');
    app.useWebSocketAdapter(new ViewerWsAdapter(app));
    try {
      await app.init();
    } catch (err) {
      await app.close().catch(() => undefined);
      throw err;
    }
    const scope = this.describe(id, app, {
      notifier: app.get(ImageNotifier),
      assets: app.get(WebAssetsService),
      broadcast: app.get(BroadcastService),
      title: app.get(ScopeTitle),
      guard: app.get(ControlGuard),
      webFolder,
      workFolder,
    });
    this.scopes.set(id, scope);
    const ms = performance.now() - began;
    this.creationMs.push(ms);
    this.logger.log(`scope "${id}" is live at /s/${id}/ (${Math.round(ms)} ms)`);
    if (announce) {
      await this.registry?.added(id);
    }
    this.touch(scope);
    return scope;
  }

  private describe(id: string, app: INestApplication | undefined, parts: Pick<Scope, 'notifier' | 'assets' | 'broadcast' | 'title' | 'guard' | 'webFolder' | 'workFolder'>): Scope {
    const scope: Scope = {
      id,
      app,
      server: app?.getHttpServer() as Server | undefined,
      ...parts,
      unwatch: [],
      thumbnail: undefined,
      changeTimer: undefined,
    };
    scope.unwatch.push(parts.broadcast.watch(() => this.touch(scope)), parts.title.watch(() => this.touch(scope)));
    return scope;
  }

  /** Removes scope `id`: its viewers told to disconnect, its app closed, its folders removed. */
  async remove(id: string, { announce = true }: { announce?: boolean } = {}): Promise<void> {
    const scope = this.scopes.get(id) ?? (await this.creating.get(id));
    if (scope?.app === undefined) {
      return;
    }
    this.scopes.delete(id);
    await this.closeApp(scope);
    await rm(scope.webFolder, { recursive: true, force: true });
    await rm(scope.workFolder, { recursive: true, force: true });
    this.logger.log(`scope "${id}" deleted`);
    if (announce) {
      await this.registry?.removed(id);
    }
    this.emit([id]);
  }

  private async closeApp(scope: Scope): Promise<void> {
    for (const stop of scope.unwatch) {
      stop();
    }
    clearTimeout(scope.changeTimer);
    // app.close() runs the scope's STOP first: `{"type":"disconnect"}` and the grace.
    await scope.app?.close();
  }

  // ------------------------------------------------------------------ the list

  private summary(scope: Scope): ScopeSummary {
    const session = scope.assets.session;
    const thumbnail = scope.thumbnail !== undefined && scope.thumbnail.version === session.version ? scope.thumbnail.url : null;
    return {
      id: scope.id,
      title: scope.title.title,
      object: session.object ?? scope.notifier.currentTarget,
      version: session.version,
      stackSize: session.stackSize,
      exposure: formatExposure(session.exposureSeconds),
      viewers: scope.broadcast.count,
      updated: session.lastImageAt?.toISOString() ?? null,
      thumbnail,
    };
  }

  /** Something of `scope` changed: its thumbnail is looked up again, then the watchers hear it (coalesced). */
  private touch(scope: Scope): void {
    if (scope.changeTimer !== undefined || (this.watchers.size === 0 && scope.thumbnail?.version === scope.assets.session.version)) {
      return;
    }
    scope.changeTimer = setTimeout(() => {
      void this.refreshThumbnail(scope).then(() => {
        scope.changeTimer = undefined;
        if (this.scopes.get(scope.id) === scope) {
          this.emit([scope.id]);
        }
      });
    }, CHANGE_COALESCE_MS);
    scope.changeTimer.unref();
  }

  private async refreshThumbnail(scope: Scope): Promise<void> {
    const version = scope.assets.session.version;
    if (version === null || scope.thumbnail?.version === version) {
      return;
    }
    const size = await pyramidSize(scope.webFolder, version);
    const extension = this.options.tileFormat === 'webp' ? 'webp' : 'jpeg';
    const level = size === undefined ? undefined : thumbnailLevel(size.width, size.height, Math.min(THUMBNAIL_EDGE, this.options.tileSize));
    scope.thumbnail = { version, url: level === undefined ? null : `/s/${scope.id}/v/${version}/image_files/${level}/0_0.${extension}` };
  }

  private emit(ids: string[]): void {
    for (const listener of this.watchers) {
      try {
        listener(ids);
      } catch (err) {
        this.logger.error(`a scopes watcher failed: ${(err as Error).message}`);
      }
    }
  }

  /** For `/api/scopes`: the thumbnails of versions not looked up yet are looked up first. */
  async listFresh(): Promise<ScopeSummary[]> {
    await Promise.all([...this.scopes.values()].map((s) => this.refreshThumbnail(s)));
    return this.list();
  }
}
