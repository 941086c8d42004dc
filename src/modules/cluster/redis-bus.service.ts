import { Logger } from '@nestjs/common';
import { objectName, OBJECT_NAME_RULE, type ImageDetails } from '../../common/image-details.js';
import { createClient, ErrorReply, RESP_TYPES } from 'redis';
import { BehaviorSubject, distinctUntilChanged, Subject, type Observable } from 'rxjs';
import { assertMetrics } from '../web-assets/web-assets.service.js';
import { FETCH, PUBLISH, RAISE_FLOOR } from './cluster-scripts.js';
import { ClusterUnavailableError } from './cluster-unavailable.error.js';

export { ClusterUnavailableError };

/** Metrics stored with a version: absolute values, keys left out keep the previous version's. */
export interface ClusterMetrics {
  stackSize?: number;
  exposureSeconds?: number;
  /** The target the image names, and the kit's FITS cards (checked like the HTTP edge's). */
  object?: string;
  details?: ImageDetails;
}

/** One version as every replica applies it. */
export interface ClusterUpdate {
  version: number;
  /** The version whose image this one shows (older than `version` for a metrics-only update). */
  imageVersion: number | null;
  /** The JPEG bytes; null when no image was published yet (metrics only). */
  image: Buffer | null;
  metrics: ClusterMetrics;
}

export type RedisState = 'up' | 'down';

const DETAIL_FIELDS: (keyof ImageDetails)[] = ['telescope', 'camera', 'filter', 'dateObs'];

export interface RedisBusOptions {
  /** redis:// or rediss:// URL; its password never appears in a message. */
  url: string;
  /** Key and channel prefix, `[a-z0-9-]{1,40}`. */
  namespace: string;
  /** Identifies this replica in logs and /status. */
  replicaId: string;
  /** How long a replaced version's keys stay in Redis, seconds. Default {@link REPLACED_TTL_SECONDS}. */
  replacedTtlSeconds?: number;
  /** The highest version this replica has on disk (e.g. its highest `/v/<n>`): never reused. */
  highestLocalVersion?: () => number;
  /** Longest wait for one Redis command before the publish is refused. Default 5000 ms. */
  commandTimeoutMs?: number;
}

/** The URL without user and password, for messages. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return 'redis://(unparseable URL)';
  }
}

/**
 * Default life of a replaced version's keys, seconds. A replica fetches a version as soon as
 * it is announced and a catch-up reads only the latest: minutes are plenty, an hour of
 * images is memory nothing reads.
 */
export const REPLACED_TTL_SECONDS = 120;

const backoff = (retries: number): number => Math.min(50 * 2 ** retries, 2000);

/** A failed login: the URL's password is wrong or missing. */
const LOGIN_FAILED = /\b(WRONGPASS|NOAUTH)\b|AUTH.*without any password/;

/** What a version's stored metrics may carry: the values assertMetrics accepts. */
const METRIC_KEYS = ['stackSize', 'exposureSeconds'] as const;

/** At most this many ignored announcements are logged per minute (anyone with Redis access can send them). */
const IGNORED_LOG_BURST = 20;

/** A value read from Redis, quoted and cut for a log line. */
function shown(value: unknown): string {
  const text = typeof value === 'string' ? value : String(JSON.stringify(value));
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
}

/** One version as the FETCH script read it, or why there is none. */
type Read = { kind: 'above'; latest: number } | { kind: 'gone'; latest: number } | { kind: 'ok'; latest: number; update: ClusterUpdate };

/**
 * The Redis side of a replica: global versions (a counter in Redis), each version's image
 * and metrics, the `latest` pointer, and announcements on `<ns>:announce`. Two connections:
 * one for commands, one subscribed. `updates$` gives each replica (the publisher included)
 * the versions to apply, fetched once, in increasing order, never one twice; after a
 * (re)connect it catches up from `latest`, since pub/sub drops what it sent meanwhile.
 * Nothing read from Redis is trusted: an announcement is a hint bounded by `latest`, stored
 * metrics are checked with assertMetrics, garbage in a key is overwritten by the next publish.
 */
export class RedisBus {
  private readonly logger = new Logger(RedisBus.name);
  private readonly client;
  private readonly subscriber;
  private readonly keys: { version: string; latest: string; channel: string };
  private readonly ttl: number;
  private readonly timeoutMs: number;
  private readonly stateSubject = new BehaviorSubject<RedisState>('down');
  private readonly updates = new Subject<ClusterUpdate>();
  /** The highest version emitted on `updates$`. */
  private applied = 0;
  /** The highest version announced or published: fetched next, once checked against `latest`. */
  private wanted = 0;
  /** The highest version Redis vouched for (its `latest`, a version it gave this replica). */
  private known = 0;
  private draining = false;
  private closed = false;
  /** node-redis resubscribes after a reconnect only if the first SUBSCRIBE succeeded. */
  private subscribed = false;
  private lastDownReason = '';
  /** Causes of the current outage already logged: each once, however often it retries. */
  private readonly loggedCauses = new Set<string>();
  private ignoredLog = { windowStart: 0, logged: 0, suppressed: 0 };

  /** Versions to apply, each once, increasing; a version a newer one replaced may be skipped. */
  readonly updates$: Observable<ClusterUpdate> = this.updates.asObservable();
  /** `up` while both connections are ready. */
  readonly state$: Observable<RedisState> = this.stateSubject.pipe(distinctUntilChanged());

  constructor(private readonly options: RedisBusOptions) {
    const ns = options.namespace;
    this.keys = { version: `${ns}:version`, latest: `${ns}:latest`, channel: `${ns}:announce` };
    this.ttl = options.replacedTtlSeconds ?? REPLACED_TTL_SECONDS;
    this.timeoutMs = options.commandTimeoutMs ?? 5000;
    this.client = createClient({
      url: options.url,
      // Refuse at once while disconnected: a publish must answer 503, not wait.
      disableOfflineQueue: true,
      pingInterval: 5000,
      name: `${ns}:${options.replicaId}:commands`,
      socket: { reconnectStrategy: backoff, connectTimeout: 3000 },
    }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    // The subscriber keeps its queue: node-redis resubscribes on every reconnect.
    this.subscriber = this.client.duplicate({ disableOfflineQueue: false, pingInterval: 0, name: `${ns}:${options.replicaId}:subscriber` });
    for (const [name, c] of [['commands', this.client], ['subscriber', this.subscriber]] as const) {
      c.on('error', (err: Error) => this.onDown(`${name}: ${err.message}`));
      c.on('end', () => this.onDown(`${name}: connection closed`));
      c.on('ready', () => this.onReady());
    }
  }

  get state(): RedisState {
    return this.stateSubject.value;
  }

  get replicaId(): string {
    return this.options.replicaId;
  }

  /** The highest version this replica has seen in Redis (an announcement counts once Redis vouched for it). */
  get highestSeen(): number {
    return Math.max(this.known, this.applied);
  }

  /** Connects in the background: a replica starts (and serves its last image) with Redis down. */
  start(): void {
    for (const c of [this.client, this.subscriber]) {
      c.connect().catch((err: Error) => this.closed || this.logger.error(`Redis connect gave up: ${this.clean(err.message)}`));
    }
  }

  /**
   * Stores a JPEG and its metrics under a new global version, moves `latest` and announces
   * it; resolves with the version. `image: null` publishes the metrics with the latest image.
   * Throws {@link ClusterUnavailableError} while Redis is down, with nothing changed.
   */
  async publish(image: Buffer | null, metrics: ClusterMetrics = {}): Promise<number> {
    if (this.state === 'down' || !this.client.isReady) {
      throw new ClusterUnavailableError(this.lastDownReason || 'not connected');
    }
    const args = [this.options.namespace, String(this.floor()), String(this.ttl), JSON.stringify(metrics)];
    let reply: unknown;
    try {
      reply = await this.withTimeout().eval(PUBLISH, {
        keys: [this.keys.version, this.keys.latest],
        arguments: image ? [...args, image] : args,
      });
    } catch (err) {
      if (err instanceof ErrorReply) {
        throw new ClusterUnavailableError(this.clean(err.message), 'refused');
      }
      // Sent but unanswered (the link broke mid-call) may still have landed: the
      // announcement or the next catch-up then delivers it; the caller saw a 503.
      throw new ClusterUnavailableError(this.clean((err as Error).message));
    }
    const [first, ...notes] = reply as [number, ...Buffer[]];
    const version = Number(first);
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new ClusterUnavailableError(`the publish script answered ${shown(first)}, not a version`, 'refused');
    }
    for (const note of notes) {
      this.logger.warn(`found in Redis and overwritten by version ${version}: ${String(note)}`);
    }
    this.known = Math.max(this.known, version);
    this.want(version);
    return version;
  }

  /** Publishes new metrics with the latest image under a new version. */
  updateMetrics(metrics: ClusterMetrics): Promise<number> {
    return this.publish(null, metrics);
  }

  /**
   * Reads one version (its checked metrics and image bytes), or null when Redis no longer
   * has it or it is above Redis's `latest`.
   */
  async fetch(version: number): Promise<ClusterUpdate | null> {
    const read = await this.read(version);
    return read.kind === 'ok' ? read.update : null;
  }

  /** Closes both connections; no more updates. */
  async close(): Promise<void> {
    this.closed = true;
    this.stateSubject.next('down');
    for (const c of [this.subscriber, this.client]) {
      if (c.isOpen) {
        await c.close().catch(() => c.destroy());
      } else {
        c.destroy();
      }
    }
    this.updates.complete();
  }

  private floor(): number {
    return Math.max(this.highestSeen, this.options.highestLocalVersion?.() ?? 0);
  }

  private withTimeout(): typeof this.client {
    return this.client.withAbortSignal(AbortSignal.timeout(this.timeoutMs));
  }

  private clean(message: string): string {
    return message.split(this.options.url).join(redactRedisUrl(this.options.url));
  }

  /** Logs each cause of an outage once (both connections retry every 2 s at most), the way in and the first failure included. */
  private onDown(reason: string): void {
    this.lastDownReason = this.clean(reason);
    if (this.closed) {
      return;
    }
    const cause = this.lastDownReason.replace(/^(commands|subscriber|catch-up): /, '');
    const fresh = !this.loggedCauses.has(cause) && this.loggedCauses.size < 10;
    if (fresh) {
      this.loggedCauses.add(cause);
    }
    const where = redactRedisUrl(this.options.url);
    if (fresh && LOGIN_FAILED.test(cause)) {
      this.logger.error(`Redis at ${where} refused the login (${cause}): check the password in REDIS_URL; publishes answer 503 until it is accepted`);
    } else if (this.state === 'up') {
      this.logger.warn(`Redis down (${this.lastDownReason}); serving the last image, publishes answer 503 until it is back`);
    } else if (fresh) {
      this.logger.warn(`Redis at ${where} not reachable (${cause}); serving the last image, publishes answer 503 until it is`);
    }
    this.stateSubject.next('down');
  }

  /** Either connection became ready: once both are, raise the counter, then catch up. */
  private onReady(): void {
    if (this.closed || !this.client.isReady || !this.subscriber.isReady) {
      return;
    }
    void this.resume();
  }

  private async resume(): Promise<void> {
    try {
      // Subscribed before latest is read, so nothing announced in between is missed.
      if (!this.subscribed) {
        await this.subscriber.subscribe(this.keys.channel, (message) => this.announced(String(message)));
        this.subscribed = true;
      }
      // Redis may have restarted empty: the counter must not fall below what anyone here saw.
      const reply = await this.withTimeout().eval(RAISE_FLOOR, { keys: [this.keys.version, this.keys.latest], arguments: [String(this.floor())] });
      const [latest, ...notes] = reply as [number, ...Buffer[]];
      for (const note of notes) {
        this.logger.warn(`found in Redis, overwritten by the next publish: ${String(note)}`);
      }
      if (this.state === 'down') {
        this.logger.log(`Redis up at ${redactRedisUrl(this.options.url)} (replica ${this.replicaId})`);
      }
      this.loggedCauses.clear();
      this.stateSubject.next('up');
      this.known = Math.max(this.known, Number(latest));
      this.want(Number(latest));
    } catch (err) {
      this.onDown(`catch-up: ${(err as Error).message}`);
    }
  }

  /** An announcement: anyone with access to Redis can send one, so only a version, checked against `latest` when fetched. */
  private announced(message: string): void {
    const version = /^[1-9]\d{0,15}$/.test(message) ? Number(message) : Number.NaN;
    if (!Number.isSafeInteger(version)) {
      this.ignored(`announcement ${shown(message)} ignored: not a version`);
      return;
    }
    this.want(version);
  }

  private ignored(message: string): void {
    const log = this.ignoredLog;
    if (Date.now() - log.windowStart > 60_000) {
      if (log.suppressed > 0) {
        this.logger.warn(`${log.suppressed} more ignored announcements were not logged`);
      }
      this.ignoredLog = { windowStart: Date.now(), logged: 0, suppressed: 0 };
    }
    if (this.ignoredLog.logged < IGNORED_LOG_BURST) {
      this.ignoredLog.logged++;
      this.logger.warn(message);
    } else {
      this.ignoredLog.suppressed++;
    }
  }

  /** A version may exist: fetch and emit the newest wanted one, one at a time. */
  private want(version: number): void {
    if (Number.isSafeInteger(version) && version > this.wanted) {
      this.wanted = version;
    }
    this.drain();
  }

  private drain(): void {
    if (this.draining || this.closed || this.wanted <= this.applied) {
      return;
    }
    this.draining = true;
    void this.drainLoop().finally(() => (this.draining = false));
  }

  private async drainLoop(): Promise<void> {
    while (!this.closed && this.wanted > this.applied) {
      const target = this.wanted;
      let read: Read;
      try {
        read = await this.read(target);
      } catch (err) {
        // Retried on the next announcement or reconnect.
        this.logger.warn(`could not fetch version ${target}: ${this.clean((err as Error).message)}`);
        return;
      }
      this.known = Math.max(this.known, read.latest);
      if (read.kind === 'above') {
        this.ignored(`announcement of version ${target} ignored: Redis's latest is ${read.latest}`);
        if (this.wanted === target) {
          this.wanted = Math.max(this.applied, read.latest);
        }
        continue;
      }
      if (read.kind === 'gone') {
        this.logger.warn(`version ${target} is no longer in Redis; catching up to the latest (${read.latest})`);
        this.applied = Math.max(this.applied, target);
        this.wanted = Math.max(this.wanted, read.latest);
        continue;
      }
      if (target > this.applied) {
        this.applied = target;
        this.updates.next(read.update);
      }
    }
  }

  private async read(version: number): Promise<Read> {
    const reply = (await this.withTimeout().eval(FETCH, {
      keys: [this.keys.latest],
      arguments: [this.options.namespace, String(version)],
    })) as [Buffer, number, Buffer?, (Buffer | null)?, (Buffer | null)?];
    const [kind, latest, raw, imageOf, image] = reply;
    const status = kind.toString();
    if (status !== 'ok' || raw === undefined) {
      return status === 'gone' ? { kind: 'gone', latest: Number(latest) } : { kind: 'above', latest: Number(latest) };
    }
    const imageVersion = imageOf ? Number(imageOf.toString()) : null;
    return { kind: 'ok', latest: Number(latest), update: this.checked(version, raw.toString(), imageVersion, image ?? null) };
  }

  /** A version's stored metrics, checked like the HTTP edge's: a value that fails is skipped, never applied. */
  private checked(version: number, raw: string, imageVersion: number | null, image: Buffer | null): ClusterUpdate {
    const warn = (what: string): void => this.logger.warn(`version ${version} from Redis: ${what}`);
    let stored: unknown;
    try {
      stored = JSON.parse(raw);
    } catch {
      stored = undefined;
    }
    if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
      warn(`its metrics ${shown(raw)} are not a JSON object; none applied`);
      stored = {};
    }
    const values = stored as Record<string, unknown>;
    const metrics: ClusterMetrics = {};
    for (const key of METRIC_KEYS) {
      const value = values[key];
      if (value === undefined) {
        continue;
      }
      try {
        assertMetrics({ [key]: value as number });
        metrics[key] = value as number;
      } catch (err) {
        warn(`${(err as Error).message}; skipped, the previous value stays`);
      }
    }
    const object = objectName(values.object);
    if (object !== undefined) {
      metrics.object = object;
    } else if (values.object !== undefined && values.object !== null) {
      warn(`its object ${shown(values.object)} is not ${OBJECT_NAME_RULE}; skipped`);
    }
    if (typeof values.details === 'object' && values.details !== null) {
      const given = values.details as Record<string, unknown>;
      const details: ImageDetails = {};
      for (const field of DETAIL_FIELDS) {
        const value = objectName(given[field]);
        if (value !== undefined) {
          details[field] = value;
        }
      }
      metrics.details = details;
    }
    if (imageVersion === null && values.imageOf !== undefined) {
      warn(`imageOf ${shown(values.imageOf)} names no image in Redis (a version ≤ ${version} whose image is stored); no image applied`);
    }
    const checkedImage = imageVersion !== null && Number.isSafeInteger(imageVersion) ? image : null;
    return { version, imageVersion: checkedImage ? imageVersion : null, image: checkedImage, metrics };
  }
}
