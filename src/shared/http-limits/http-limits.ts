import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, Server } from 'node:http';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ConnectionGuard } from './connection-limits.js';
import { RefusalLog } from './refusal-log.js';

/**
 * The connection caps of the server this module binds, and the one refusal log that the
 * request front, the `/ws` upgrade limiter and the caps share (see README, "Limits and hardening").
 */
@Injectable()
export class HttpLimits {
  readonly refusals = new RefusalLog(new Logger('Limits'));
  private connections: ConnectionGuard | undefined;

  constructor(@Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions) {}

  /** Caps at accept, timeouts and the slow-reader sweep on the server this module binds (HTTP or HTTPS); once. */
  limitServer(server: Server): void {
    if (this.connections !== undefined) {
      return;
    }
    this.connections = new ConnectionGuard(this.options, this.refusals, new Logger('Limits'));
    this.connections.attach(server);
  }

  /** Called by the request front for each request: its connection has spoken, Node's timeouts take over. */
  requestArrived(req: IncomingMessage): void {
    this.connections?.requestArrived(req);
  }

  /** An upgrade taken over ahead of the server's own 'upgrade' listeners (a scope's `/ws`). */
  upgradeArrived(req: IncomingMessage): void {
    this.connections?.upgradeArrived(req);
  }
}
