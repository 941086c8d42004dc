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

  /** Caps, timeouts and the slow-reader sweep on the server this module binds; once. */
  limitServer(server: Server): void {
    if (this.connections !== undefined) {
      return;
    }
    this.connections = new ConnectionGuard(this.options, this.refusals);
    this.connections.attach(server);
  }

  /** Why a request or upgrade is refused because its connection is over a cap, or undefined. */
  connectionRefusal(req: IncomingMessage): string | undefined {
    return this.connections?.refusal(req);
  }
}
