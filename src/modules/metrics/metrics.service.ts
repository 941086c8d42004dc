import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds; from a pass-through JPEG (a few ms) to a large TIFF conversion. */
const PUBLISH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds; a broadcast to thousands of viewers takes milliseconds. */
const BROADCAST_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/**
 * Prometheus metrics of this process, in a registry of its own (not prom-client's global
 * one), so two embedded instances or test apps never collide.
 */
@Injectable()
export class MetricsService implements OnApplicationBootstrap {
  readonly registry = new Registry();
  private readonly publishes: Counter<'result'>;
  private readonly publishSeconds: Histogram;
  private readonly broadcastSeconds: Histogram;
  private readonly bytesServed: Counter;
  private readonly viewersDropped: Counter;

  constructor(private readonly adapterHost: HttpAdapterHost) {
    const registers = [this.registry];
    this.publishes = new Counter({ name: 'stackcast_publishes_total', help: 'Publishes, by result', labelNames: ['result'], registers });
    this.publishSeconds = new Histogram({ name: 'stackcast_publish_duration_seconds', help: 'From a publish call to its files on disk and new_image sent', buckets: PUBLISH_BUCKETS, registers });
    this.broadcastSeconds = new Histogram({ name: 'stackcast_broadcast_duration_seconds', help: 'Time to hand one message to every viewer', buckets: BROADCAST_BUCKETS, registers });
    this.bytesServed = new Counter({ name: 'stackcast_http_bytes_served_total', help: 'Bytes of HTTP response bodies sent', registers });
    this.viewersDropped = new Counter({ name: 'stackcast_viewers_dropped_total', help: 'Viewers cut off because they stopped reading or failed a heartbeat', registers });
  }

  /**
   * A gauge read at each scrape from its owner (viewers from the gateway, Redis state from
   * the cluster), so this module needs none of them.
   */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** A publish finished (`ok`) or was refused (`rejected`, `unavailable` while Redis is down). */
  recordPublish(seconds: number, result: 'ok' | 'rejected' | 'unavailable' = 'ok'): void {
    this.publishes.inc({ result });
    if (result === 'ok') {
      this.publishSeconds.observe(seconds);
    }
  }

  /** One broadcast to every viewer: how long it took and how many viewers it dropped. */
  recordBroadcast(seconds: number, dropped: number): void {
    this.broadcastSeconds.observe(seconds);
    this.viewersDropped.inc(dropped);
  }

  /** A viewer dropped outside a broadcast (a missed heartbeat). */
  recordDropped(count = 1): void {
    this.viewersDropped.inc(count);
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts every response body, including the hot files answered ahead of Express. */
  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server || typeof server.prependListener !== 'function') {
      return;
    }
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      res.once('finish', () => {
        const length = Number(res.getHeader('content-length'));
        if (req.method !== 'HEAD' && res.statusCode !== 304 && Number.isFinite(length)) {
          this.bytesServed.inc(length);
        }
      });
    });
  }
}
