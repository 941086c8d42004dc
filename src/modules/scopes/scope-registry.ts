import { Logger } from '@nestjs/common';
import type { createClient } from 'redis';
import { redactRedisUrl } from '../cluster/redis-bus.service.js';

function newClient(create: typeof createClient, url: string) {
  return create({ url, socket: { connectTimeout: 3000, reconnectStrategy: (n: number) => Math.min(5000, 100 * 2 ** n) } });
}
type RedisClient = ReturnType<typeof newClient>;

/**
 * With `redisUrl`: the scope ids every replica knows (a Redis set), and an announcement
 * on each change, so a replica creates (or drops) a scope another one created (or
 * deleted). Best effort: while Redis is down a replica still serves the scopes it has.
 */
export class ScopeRegistry {
  private readonly logger = new Logger('ScopeRegistry');
  private readonly key: string;
  private readonly channel: string;
  private client: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private closed = false;

  constructor(
    private readonly url: string,
    namespace: string,
    private readonly replicaId: string,
  ) {
    this.key = `${namespace}:scopes`;
    this.channel = `${namespace}:scopes:announce`;
  }

  /**
   * Connects in the background; `onChange` hears another replica's `+id` (created) and
   * `-id` (deleted), `onReady` the ids Redis knows each time the connection is (re)made.
   */
  start(onChange: (change: { id: string; created: boolean }) => void, onReady: (ids: string[]) => void): void {
    void this.connect(onChange, onReady).catch((err: Error) => {
      this.logger.warn(`the scopes of other replicas are not followed: ${err.message}`);
    });
  }

  private async connect(onChange: (change: { id: string; created: boolean }) => void, onReady: (ids: string[]) => void): Promise<void> {
    const { createClient } = await import('redis');
    const client = newClient(createClient, this.url);
    const subscriber = client.duplicate();
    for (const c of [client, subscriber]) {
      c.on('error', (err: Error) => this.logger.debug(`Redis (${redactRedisUrl(this.url)}): ${err.message}`));
    }
    this.client = client;
    this.subscriber = subscriber;
    client.on('ready', () => {
      void this.ids().then(onReady);
    });
    // Queued until connected; node-redis subscribes again after each reconnect.
    const subscribed = subscriber.subscribe(this.channel, (message: string) => {
      const [replica, sign, id] = message.split(' ');
      if (replica !== this.replicaId && (sign === '+' || sign === '-') && id !== undefined) {
        onChange({ id, created: sign === '+' });
      }
    });
    await Promise.all([client.connect(), subscriber.connect(), subscribed]);
  }

  /** The ids known in Redis; empty while it is unreachable. */
  async ids(): Promise<string[]> {
    try {
      return this.client?.isReady === true ? await this.client.sMembers(this.key) : [];
    } catch {
      return [];
    }
  }

  /** True when Redis knows scope `id` (another replica created it). */
  async has(id: string): Promise<boolean> {
    try {
      return this.client?.isReady === true ? (await this.client.sIsMember(this.key, id)) === 1 : false;
    } catch {
      return false;
    }
  }

  async added(id: string): Promise<void> {
    await this.change(id, '+');
  }

  async removed(id: string): Promise<void> {
    await this.change(id, '-');
  }

  private async change(id: string, sign: '+' | '-'): Promise<void> {
    const client = this.client;
    if (client?.isReady !== true) {
      return;
    }
    try {
      await (sign === '+' ? client.sAdd(this.key, id) : client.sRem(this.key, id));
      await client.publish(this.channel, `${this.replicaId} ${sign} ${id}`);
    } catch (err) {
      this.logger.warn(`could not tell the other replicas that scope "${id}" was ${sign === '+' ? 'created' : 'deleted'}: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    for (const c of [this.client, this.subscriber]) {
      if (c?.isOpen === true) {
        await c.close().catch(() => c.destroy());
      } else {
        c?.destroy();
      }
    }
  }
}
