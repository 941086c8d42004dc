import { createClient } from 'redis';
import { firstValueFrom, filter } from 'rxjs';
import { Logger, type LoggerService } from '@nestjs/common';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisTestServer } from '../../../test/helpers/redis-server.js';
import { ClusterUnavailableError, RedisBus, redactRedisUrl, type ClusterUpdate, type RedisBusOptions } from './redis-bus.service.js';

/** A bus that records every update it emits. */
class RecordingBus {
  readonly seen: ClusterUpdate[] = [];
  readonly bus: RedisBus;
  constructor(options: RedisBusOptions) {
    this.bus = new RedisBus(options);
    this.bus.updates$.subscribe((u) => this.seen.push(u));
  }
  get versions(): number[] {
    return this.seen.map((u) => u.version);
  }
  async until(predicate: (b: RecordingBus) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; saw ${JSON.stringify(this.versions)}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  async up(): Promise<void> {
    await firstValueFrom(this.bus.state$.pipe(filter((s) => s === 'up')));
  }
  async down(): Promise<void> {
    await firstValueFrom(this.bus.state$.pipe(filter((s) => s === 'down')));
  }
}

/** Every line the bus logs, printed nowhere: the tests read what an operator would see. */
class RecordingLogger implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', message: String(message) });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  matching(pattern: RegExp): string[] {
    return this.lines.map((l) => l.message).filter((m) => pattern.test(m));
  }
  async until(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.matching(pattern).length === 0) {
      if (Date.now() > deadline) {
        throw new Error(`no log line matching ${String(pattern)}; logged: ${JSON.stringify(this.lines.map((l) => l.message))}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.matching(pattern)[0];
  }
}

const jpeg = (n: number): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(64, n), Buffer.from([0xff, 0xd9])]);

describe('RedisBus (real redis-server)', () => {
  let redis: RedisTestServer;
  const buses: RecordingBus[] = [];
  let ns: string;

  const makeBus = (extra: Partial<RedisBusOptions> = {}): RecordingBus => {
    const b = new RecordingBus({ url: redis.url, namespace: ns, replicaId: `r${buses.length}`, ...extra });
    buses.push(b);
    b.bus.start();
    return b;
  };

  const logs = new RecordingLogger();
  beforeAll(() => Logger.overrideLogger(logs));

  beforeEach(async () => {
    redis = await startRedisServer();
    ns = `t${Math.floor(Math.random() * 1e9)}`;
    logs.lines.length = 0;
  });

  /** A plain client, as anyone with access to Redis has. */
  const rawClient = async (url = redis.url) => {
    const raw = createClient({ url });
    await raw.connect();
    return raw;
  };

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.bus.close()));
    await redis.stop();
  });

  it('every instance, the publisher included, gets each version once, with its bytes and merged metrics', async () => {
    const [a, b, c] = [makeBus(), makeBus(), makeBus()];
    await Promise.all([a.up(), b.up(), c.up()]);
    const v1 = await a.bus.publish(jpeg(1), { stackSize: 1, exposureSeconds: 10 });
    const v2 = await b.bus.publish(jpeg(2), { stackSize: 2 });
    const v3 = await c.bus.updateMetrics({ exposureSeconds: 30 });
    expect([v1, v2, v3]).toEqual([1, 2, 3]);
    for (const r of [a, b, c]) {
      await r.until((x) => x.versions.at(-1) === 3, 'version 3');
      expect(r.versions).toEqual([...r.versions].sort((x, y) => x - y));
      expect(new Set(r.versions).size).toBe(r.versions.length);
      const last = r.seen.at(-1)!;
      expect(last.image?.equals(jpeg(2))).toBe(true);
      expect(last.imageVersion).toBe(2);
      expect(last.metrics).toEqual({ stackSize: 2, exposureSeconds: 30 });
    }
    expect((await a.bus.fetch(1))?.image?.equals(jpeg(1))).toBe(true);
  });

  it('concurrent publishes from three instances get distinct versions and all end on the same latest', async () => {
    const all = [makeBus(), makeBus(), makeBus()];
    await Promise.all(all.map((b) => b.up()));
    const versions = await Promise.all(all.flatMap((b, i) => Array.from({ length: 10 }, (_, k) => b.bus.publish(jpeg(i * 10 + k)))));
    expect(new Set(versions).size).toBe(30);
    expect(Math.max(...versions)).toBe(30);
    for (const b of all) {
      await b.until((x) => x.versions.at(-1) === 30, 'version 30');
      expect(b.versions).toEqual([...new Set(b.versions)].sort((x, y) => x - y));
    }
    const winner = versions.indexOf(30);
    const bytes = all.map((b) => b.seen.at(-1)!.image!);
    expect(bytes.every((x) => x.equals(jpeg(Math.floor(winner / 10) * 10 + (winner % 10))))).toBe(true);
  });

  it('an announcement arriving twice or out of order changes nothing', async () => {
    const a = makeBus();
    await a.up();
    await a.bus.publish(jpeg(1));
    await a.bus.publish(jpeg(2));
    await a.until((x) => x.versions.at(-1) === 2, 'version 2');
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      await raw.publish(`${ns}:announce`, '2');
      await raw.publish(`${ns}:announce`, '1');
      await raw.publish(`${ns}:announce`, 'garbage');
      await a.bus.publish(jpeg(3));
      await a.until((x) => x.versions.at(-1) === 3, 'version 3');
    } finally {
      await raw.close();
    }
    expect(a.versions.filter((v) => v <= 2)).toEqual(a.versions.includes(1) ? [1, 2] : [2]);
    expect(a.versions.at(-1)).toBe(3);
    expect(new Set(a.versions).size).toBe(a.versions.length);
  });

  it('Redis killed: down, publish refused with nothing changed; restarted empty: versions never reused, all catch up', async () => {
    const [a, b] = [makeBus(), makeBus()];
    await Promise.all([a.up(), b.up()]);
    for (let i = 1; i <= 5; i++) {
      await a.bus.publish(jpeg(i));
    }
    await b.until((x) => x.versions.at(-1) === 5, 'version 5');

    const bothDown = Promise.all([a.down(), b.down()]);
    await redis.kill();
    await bothDown;
    await expect(a.bus.publish(jpeg(99))).rejects.toBeInstanceOf(ClusterUnavailableError);
    await expect(b.bus.updateMetrics({ stackSize: 3 })).rejects.toThrow(/Redis is unreachable.*nothing was published/);

    await redis.restart();
    await Promise.all([a.up(), b.up()]);
    // A replica that knows nothing publishes first: the others raised the counter on reconnect.
    const fresh = makeBus();
    await fresh.up();
    const v = await fresh.bus.publish(jpeg(6));
    expect(v).toBe(6);
    for (const r of [a, b, fresh]) {
      await r.until((x) => x.versions.at(-1) === 6, 'version 6 after the restart');
      expect(r.versions).toEqual([...new Set(r.versions)].sort((x, y) => x - y));
      expect(r.seen.at(-1)!.image!.equals(jpeg(6))).toBe(true);
      expect(r.seen.some((u) => u.image?.equals(jpeg(99)) === true)).toBe(false);
    }
  });

  it('a replica that comes back after Redis restarted empty raises the counter from what it has on disk', async () => {
    const a = makeBus({ highestLocalVersion: () => 41 });
    await a.up();
    expect(await a.bus.publish(jpeg(1))).toBe(42);
  });

  it('catches up to latest after a reconnect, since pub/sub dropped what was sent meanwhile', async () => {
    const [a, b] = [makeBus(), makeBus()];
    await Promise.all([a.up(), b.up()]);
    await a.bus.publish(jpeg(1));
    await b.until((x) => x.versions.at(-1) === 1, 'version 1');
    // Drop only b's subscriber connection; a keeps publishing meanwhile.
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      const bDown = b.down();
      const list = await admin.clientList({ TYPE: 'PUBSUB' });
      const id = list.find((c) => c.name.endsWith(':r1:subscriber'))?.id;
      expect(id).toBeDefined();
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', String(id)]);
      await bDown;
      await a.bus.publish(jpeg(2));
      await a.bus.publish(jpeg(3));
    } finally {
      await admin.close();
    }
    await b.until((x) => x.versions.at(-1) === 3, 'catch-up to 3');
    expect(b.seen.at(-1)!.image!.equals(jpeg(3))).toBe(true);
    // Resubscribed by node-redis: later announcements arrive without a reconnect.
    await a.bus.publish(jpeg(4));
    await b.until((x) => x.versions.at(-1) === 4, 'version 4 through the resubscribed channel');
  });

  it('an instance started late catches up to the latest version at once', async () => {
    const a = makeBus();
    await a.up();
    await a.bus.publish(jpeg(1), { stackSize: 1 });
    await a.bus.publish(jpeg(2), { stackSize: 2 });
    const late = makeBus();
    await late.until((x) => x.versions.length > 0, 'catch-up');
    expect(late.versions).toEqual([2]);
    expect(late.seen[0].metrics).toEqual({ stackSize: 2 });
  });

  it('a replica started while Redis is down is down, then comes up by itself', async () => {
    await redis.kill();
    const a = makeBus();
    expect(a.bus.state).toBe('down');
    await expect(a.bus.publish(jpeg(1))).rejects.toBeInstanceOf(ClusterUnavailableError);
    await redis.restart();
    await a.up();
    expect(await a.bus.publish(jpeg(1))).toBe(1);
  });

  it('keeps Redis bounded: a replaced version expires, the latest does not', async () => {
    const a = makeBus({ replacedTtlSeconds: 120 });
    await a.up();
    await a.bus.publish(jpeg(1));
    await a.bus.updateMetrics({ stackSize: 5 });
    await a.bus.publish(jpeg(2));
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      expect(await raw.ttl(`${ns}:image:1`)).toBeGreaterThan(0);
      expect(await raw.ttl(`${ns}:metrics:2`)).toBeGreaterThan(0);
      expect(await raw.ttl(`${ns}:image:3`)).toBe(-1);
      expect(await raw.ttl(`${ns}:metrics:3`)).toBe(-1);
      expect(await raw.get(`${ns}:latest`)).toBe('3');
    } finally {
      await raw.close();
    }
  });

  it('an announcement above what Redis holds (2^53-1, or just above latest) is ignored with a log line; publishes go on', async () => {
    const a = makeBus();
    await a.up();
    await a.bus.publish(jpeg(1));
    await a.until((x) => x.versions.at(-1) === 1, 'version 1');
    const raw = await rawClient();
    try {
      for (const bogus of ['9007199254740991', '1e300', '-1', '3.5', '0x10', ' 1', '']) {
        await raw.publish(`${ns}:announce`, bogus);
      }
      await raw.publish(`${ns}:announce`, '5');
      await logs.until(/announcement of version 9007199254740991 ignored: Redis's latest is 1/);
      await logs.until(/announcement of version 5 ignored: Redis's latest is 1/);
      expect(logs.matching(/announcement "1e300" ignored: not a version/)).toHaveLength(1);

      expect(await a.bus.publish(jpeg(2))).toBe(2);
      await a.until((x) => x.versions.at(-1) === 2, 'version 2 applied');
      expect(await raw.get(`${ns}:latest`)).toBe('2');
      expect(await raw.get(`${ns}:version`)).toBe('2');
      // A replica (re)started now is not wedged either.
      const b = makeBus();
      await b.up();
      expect(await b.bus.publish(jpeg(3))).toBe(3);
      for (const r of [a, b]) {
        await r.until((x) => x.versions.at(-1) === 3, 'version 3 on every replica');
      }
      expect(a.versions).toEqual([1, 2, 3]);
    } finally {
      await raw.close();
    }
  });

  it('a Redis whose counter and latest are past 2^53 or not numbers is repaired by the next publish, saying what was wrong', async () => {
    const raw = await rawClient();
    try {
      await raw.set(`${ns}:version`, '9007199254740993');
      await raw.set(`${ns}:latest`, '9007199254740992');
      const a = makeBus();
      await a.up();
      expect(await a.bus.publish(jpeg(1))).toBe(1);
      await a.until((x) => x.versions.at(-1) === 1, 'version 1');
      expect(await raw.get(`${ns}:latest`)).toBe('1');
      await logs.until(/latest \(.*:latest\) held "9007199254740992", not a version/);

      await raw.set(`${ns}:version`, 'abc');
      await raw.set(`${ns}:latest`, '{}');
      expect(await a.bus.publish(jpeg(2))).toBe(2);
      await a.until((x) => x.versions.at(-1) === 2, 'version 2');
      await logs.until(/the version counter \(.*:version\) held "abc", not a version/);

      // The version space itself used up (set by hand): refused, saying what to do, nothing changed.
      await raw.set(`${ns}:latest`, '9007199254740991');
      await expect(a.bus.publish(jpeg(3))).rejects.toThrow(/Redis refused the publish \(.*no version left above 9007199254740991 .*delete/);
      expect(await raw.get(`${ns}:version`)).toBe('2');
    } finally {
      await raw.close();
    }
  });

  it('garbage in the latest metrics key: the next publish says what is wrong and overwrites it (image or metrics only)', async () => {
    const a = makeBus();
    await a.up();
    await a.bus.publish(jpeg(1), { stackSize: 4 });
    const raw = await rawClient();
    try {
      await raw.set(`${ns}:metrics:1`, '{not json');
      expect(await a.bus.publish(jpeg(2), { stackSize: 5 })).toBe(2);
      await logs.until(/overwritten by version 2: .*metrics:1 held "\{not json", not a JSON object of metrics/);
      await a.until((x) => x.versions.at(-1) === 2, 'version 2');
      expect(a.seen.at(-1)?.metrics).toEqual({ stackSize: 5 });

      await raw.set(`${ns}:metrics:2`, '[1,2]');
      expect(await a.bus.updateMetrics({ exposureSeconds: 7 })).toBe(3);
      await a.until((x) => x.versions.at(-1) === 3, 'version 3');
      const last = a.seen.at(-1);
      expect(last?.metrics).toEqual({ exposureSeconds: 7 });
      // The image of the version whose metrics were lost is still the one shown.
      expect(last?.imageVersion).toBe(2);
      expect(last?.image?.equals(jpeg(2))).toBe(true);
    } finally {
      await raw.close();
    }
  });

  it('metrics read from Redis are checked like the HTTP edge checks them: a bad value is skipped with a warning, never applied', async () => {
    const a = makeBus();
    await a.up();
    await a.bus.publish(jpeg(1), { stackSize: 2, exposureSeconds: 60 });
    await a.until((x) => x.versions.at(-1) === 1, 'version 1');
    const raw = await rawClient();
    const plant = async (v: number, stored: object): Promise<void> => {
      await raw.set(`${ns}:metrics:${v}`, JSON.stringify(stored));
      await raw.set(`${ns}:latest`, String(v));
      await raw.set(`${ns}:version`, String(v));
      await raw.publish(`${ns}:announce`, String(v));
    };
    try {
      await plant(2, { stackSize: -5, exposureSeconds: 'NaN:NaN:NaN', imageOf: 1 });
      await a.until((x) => x.versions.at(-1) === 2, 'version 2');
      expect(a.seen.at(-1)?.metrics).toEqual({});
      expect(a.seen.at(-1)?.image?.equals(jpeg(1))).toBe(true);
      expect(logs.matching(/version 2 from Redis: stackSize must be an integer ≥ 0, got -5; skipped/)).toHaveLength(1);
      expect(logs.matching(/version 2 from Redis: exposureSeconds must be a number ≥ 0, got NaN:NaN:NaN; skipped/)).toHaveLength(1);

      await plant(3, { stackSize: 3.5, exposureSeconds: 30, imageOf: { evil: true } });
      await a.until((x) => x.versions.at(-1) === 3, 'version 3');
      expect(a.seen.at(-1)?.metrics).toEqual({ exposureSeconds: 30 });
      expect(a.seen.at(-1)?.image).toBeNull();
      await logs.until(/version 3 from Redis: imageOf "\{\\"evil\\":true\}" names no image in Redis/);

      // The next publish merges only the values that pass.
      expect(await a.bus.publish(jpeg(4), { exposureSeconds: 90 })).toBe(4);
      await a.until((x) => x.versions.at(-1) === 4, 'version 4');
      expect(a.seen.at(-1)?.metrics).toEqual({ exposureSeconds: 90 });
      expect(JSON.parse((await raw.get(`${ns}:metrics:4`)) ?? 'null')).toEqual({ exposureSeconds: 90, imageOf: 4 });
    } finally {
      await raw.close();
    }
  });

  it('a failed Redis login is logged once with its cause (WRONGPASS, NOAUTH), never the password', async () => {
    const secured = await startRedisServer(10_000, ['--requirepass', 'right-Pa55word']);
    const admin = await rawClient(`redis://:right-Pa55word@127.0.0.1:${secured.port}`);
    try {
      const connections = async (): Promise<number> => Number(/total_connections_received:(\d+)/.exec(await admin.info('stats'))?.[1]);
      for (const [url, cause] of [
        [`redis://:wr0ng-Pa55word@127.0.0.1:${secured.port}`, /WRONGPASS/],
        [`redis://127.0.0.1:${secured.port}`, /NOAUTH/],
      ] as const) {
        const before = await connections();
        const b = makeBus({ url });
        // Both connections retried a few times each: still one line.
        while ((await connections()) < before + 8) {
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(b.bus.state).toBe('down');
        const lines = logs.matching(cause);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+ refused the login .*check the password in REDIS_URL/);
        await expect(b.bus.publish(jpeg(1))).rejects.toThrow(cause);
        await b.bus.close();
      }
      expect(logs.lines.map((l) => l.message).join('\n')).not.toMatch(/Pa55word/);
    } finally {
      await admin.close();
      await secured.stop();
    }
  });

  it('once a refused login is accepted (the password fixed in Redis), the replica comes up and hears announcements', async () => {
    const secured = await startRedisServer(10_000, ['--requirepass', 'old-Pa55word']);
    const admin = await rawClient(`redis://:old-Pa55word@127.0.0.1:${secured.port}`);
    try {
      const b = makeBus({ url: `redis://:new-Pa55word@127.0.0.1:${secured.port}` });
      await logs.until(/refused the login \(WRONGPASS/);
      await admin.configSet('requirepass', 'new-Pa55word');
      await b.up();
      const a = makeBus({ url: `redis://:new-Pa55word@127.0.0.1:${secured.port}` });
      await a.up();
      const v = await a.bus.publish(jpeg(1));
      // Reached through the announcement: b was up (and had caught up) before the publish.
      await b.until((x) => x.versions.includes(v), 'the announcement on the replica whose first login failed');
    } finally {
      await admin.close();
      await secured.stop();
    }
  });

  it('a replaced image expires within minutes by default (a catch-up reads only the latest), not after an hour', async () => {
    const a = makeBus();
    await a.up();
    await a.bus.publish(jpeg(1));
    await a.bus.publish(jpeg(2));
    const raw = await rawClient();
    try {
      for (const key of [`${ns}:image:1`, `${ns}:metrics:1`]) {
        const ttl = await raw.ttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(300);
      }
      expect(await raw.ttl(`${ns}:image:2`)).toBe(-1);
    } finally {
      await raw.close();
    }
  });

  it('never shows the password of the URL', () => {
    expect(redactRedisUrl('redis://user:s3cret@host:6380/2')).toBe('redis://host:6380/2');
    expect(redactRedisUrl('rediss://:s3cret@host')).not.toContain('s3cret');
  });
});
