import { Inject, Logger } from '@nestjs/common';
import {
  WebSocketGateway,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
} from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import {
  DEFAULT_MAX_CLIENT_FRAME_BYTES,
  IMAGE_SERVER_OPTIONS,
  type ImageServerOptions,
} from '../config/image-server-options.js';
import { HttpLimits } from '../shared/http-limits/http-limits.js';
import { ViewerGate } from '../shared/viewer-gate/viewer-gate.js';
import { BroadcastService } from './broadcast.service.js';
import { UpgradeLimiter } from './upgrade-limiter.js';
import { ViewerSessions } from './viewer-sessions.service.js';

const MAX_PENDING_AUTO_PONGS = 16;

/**
 * `/ws`: viewers connect here and are told when a new image is on disk. Each connection
 * is a session ({@link ViewerSessions}: id, `hello`, the viewer's own messages, rate
 * limited); a frame over `maxClientFrameBytes` closes that client.
 */
@WebSocketGateway({
  path: '/ws',
  // Browsers offer permessage-deflate; accepting it costs a compressor per connection
  // for messages of a few bytes.
  perMessageDeflate: false,
  maxPayload: DEFAULT_MAX_CLIENT_FRAME_BYTES,
  // A client that sends pings and never reads our pongs is cut off after this many
  // unsent pongs (ws >= 8.23; package.json overrides the copy @nestjs/platform-ws pins).
  maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
  // BroadcastService keeps the clients (and STOP ends them): a second set in ws would cost
  // an entry and a 'close' closure per viewer.
  clientTracking: false,
})
export class ImageGateway implements OnGatewayInit<WebSocketServer>, OnGatewayConnection<WebSocket>, OnGatewayDisconnect<WebSocket> {
  private readonly logger = new Logger(ImageGateway.name);

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly broadcast: BroadcastService,
    private readonly gate: ViewerGate,
    private readonly limits: HttpLimits,
    private readonly sessions: ViewerSessions,
  ) {}

  afterInit(server: WebSocketServer): void {
    // ws reads these per upgrade, so options known only at runtime can be set here.
    server.options.maxPayload = this.options.maxClientFrameBytes;
    const limiter = new UpgradeLimiter(this.options, this.limits.refusals);
    server.options.verifyClient = limiter.verify(() => this.gate.acceptsViewers);
  }

  handleConnection(client: WebSocket, request: IncomingMessage): void {
    this.broadcast.add(client);
    this.sessions.connected(client, request);
    this.logger.debug(`viewer connected from ${request.socket.remoteAddress ?? '?'} (${this.broadcast.count})`);
  }

  handleDisconnect(client: WebSocket): void {
    this.broadcast.remove(client);
    this.sessions.disconnected(client);
  }
}
