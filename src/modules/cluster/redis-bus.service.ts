import { Logger } from '@nestjs/common';
import { createClient, RESP_TYPES } from 'redis';
import { BehaviorSubject, distinctUntilChanged, Subject, type Observable } from 'rxjs';
import { FETCH, PUBLISH, RAISE_FLOOR } from './cluster-scripts.js';
import { ClusterUnavailableError } from './cluster-unavailable.error.js';

export { ClusterUnavailableError };

/** Metrics stored with a version: absolute values, keys left out keep the previous version's. */
export interface ClusterMetrics {
  stackSize?: number;
  exposureSeconds?: number;
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

export interface RedisBusOptions {
  /** redis:// or rediss:// URL; its password never appears in a message. */
  url: string;
  /** Key and channel prefix, `[a-z0-9-]{1,40}`. */
  namespace: string;
  /** Identifies this replica in logs and /status. */
  replicaId: string;
  /** How long a replaced version's keys stay in Redis, seconds. Default 3600. */
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

const backoff = (retries: number): number => Math.min(50 * 2 ** retries, 2000);

/**
 * The Redis side of a replica: global versions (INCR), each version's image and metrics,
 * the `latest` pointer, and announcements on `<ns>:announce`. Two connections: one for
 * commands, one subscribed. `updates$` gives each replica (the publisher included) the
 * versions to apply, fetched once, in increasing order, never one twice; after a
 * (re)connect it catches up from `latest`, since pub/sub drops what it sent meanwhile.
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
  /** The highest version known to exist (announced, read from latest, or published here). */
  private wanted = 0;
  private draining = false;
  private closed = false;
  private lastDownReason = '';

  /** Versions to apply, each once, increasing; a version a newer one replaced may be skipped. */
  readonly updates$: Observable<ClusterUpdate> = this.updates.asObservable();
  /** `up` while both connections are ready. */
  readonly state$: Observable<RedisState> = this.stateSubject.pipe(distinctUntilChanged());

  constructor(private readonly options: RedisBusOptions) {
    const ns = options.namespace;
    this.keys = { version: `${ns}:version`, latest: `${ns}:latest`, channel: `${ns}:announce` };
    this.ttl = options.replacedTtlSeconds ?? 3600;
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

  /** The highest version this replica has seen anywhere. */
  get highestSeen(): number {
    return Math.max(this.wanted, this.applied);
  }

  /** Connects in the background: a replica starts (and serves its last image) with Redis down. */
  start(): void {
    for (const c of [this.client, this.subscriber]) {
      c.connect().catch((err: Error) => this.closed || this.logger.error(`Redis connect gave up: ${this.clean(err.message)}`));
    }
    this.subscriber
      .subscribe(this.keys.channel, (message) => this.want(Number(message)))
      .catch((err: Error) => this.closed || this.logger.error(`subscribe failed: ${this.clean(err.message)}`));
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
      // Sent but unanswered (the link broke mid-call) may still have landed: the
      // announcement or the next catch-up then delivers it; the caller saw a 503.
      throw new ClusterUnavailableError(this.clean((err as Error).message));
    }
    const version = Number(reply);
    this.want(version);
    return version;
  }

  /** Publishes new metrics with the latest image under a new version. */
  updateMetrics(metrics: ClusterMetrics): Promise<number> {
    return this.publish(null, metrics);
  }

  /** Reads one version (its metrics and image bytes), or null when Redis no longer has it. */
  async fetch(version: number): Promise<ClusterUpdate | null> {
    const reply = (await this.withTimeout().eval(FETCH, { arguments: [this.options.namespace, String(version)] })) as
      | [Buffer, Buffer | null]
      | null;
    if (reply === null) {
      return null;
    }
    const stored = JSON.parse(reply[0].toString()) as ClusterMetrics & { imageOf?: number };
    const { imageOf, ...metrics } = stored;
    return { version, imageVersion: imageOf ?? null, image: reply[1] ?? null, metrics };
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

  private onDown(reason: string): void {
    this.lastDownReason = this.clean(reason);
    if (this.closed || this.state === 'down') {
      return;
    }
    this.logger.warn(`Redis down (${this.lastDownReason}); serving the last image, publishes answer 503 until it is back`);
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
      // Redis may have restarted empty: the counter must not fall below what anyone here saw.
      await this.withTimeout().eval(RAISE_FLOOR, { keys: [this.keys.version, this.keys.latest], arguments: [String(this.floor())] });
      const latest = await this.withTimeout().get(this.keys.latest);
      if (this.state === 'down') {
        this.logger.log(`Redis up at ${redactRedisUrl(this.options.url)} (replica ${this.replicaId})`);
      }
      this.stateSubject.next('up');
      this.want(latest === null ? 0 : Number(latest.toString()));
    } catch (err) {
      this.onDown(`catch-up: ${(err as Error).message}`);
    }
  }

  /** A version exists: fetch and emit the newest wanted one, one at a time. */
  private want(version: number): void {
    if (!Number.isSafeInteger(version) || version <= this.wanted) {
      this.drain();
      return;
    }
    this.wanted = version;
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
      let update: ClusterUpdate | null;
      try {
        update = await this.fetch(target);
      } catch (err) {
        // Retried on the next announcement or reconnect.
        this.logger.warn(`could not fetch version ${target}: ${this.clean((err as Error).message)}`);
        return;
      }
      if (update === null) {
        this.logger.warn(`version ${target} is no longer in Redis; waiting for the next one`);
        this.applied = Math.max(this.applied, target);
        continue;
      }
      if (target > this.applied) {
        this.applied = target;
        this.updates.next(update);
      }
    }
  }
}
