import { Inject } from '@nestjs/common';
import { WebSocketGateway, type OnGatewayConnection, type OnGatewayDisconnect, type OnGatewayInit } from '@nestjs/websockets';
import type { WebSocket, WebSocketServer } from 'ws';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { UpgradeLimiter } from '../../gateway/upgrade-limiter.js';
import { HttpLimits } from '../../shared/http-limits/http-limits.js';
import { ViewerGate } from '../../shared/viewer-gate/viewer-gate.js';
import { LobbyFeed } from './lobby-feed.service.js';

/** Lobby pages send nothing: any frame beyond this closes the socket. */
const MAX_CLIENT_FRAME_BYTES = 1024;

/**
 * `/scopes/ws`: the lobby's and the wall's live list of scopes ({@link LobbyFeed}). Upgrades
 * are refused while stopped (503) and go through the same limits as `/ws` (rate per address,
 * sockets in all and per address), counted apart from the viewers'.
 */
@WebSocketGateway({ path: '/scopes/ws', perMessageDeflate: false, maxPayload: MAX_CLIENT_FRAME_BYTES })
export class LobbyGateway implements OnGatewayInit<WebSocketServer>, OnGatewayConnection<WebSocket>, OnGatewayDisconnect<WebSocket> {
  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly feed: LobbyFeed,
    private readonly gate: ViewerGate,
    private readonly limits: HttpLimits,
  ) {}

  afterInit(server: WebSocketServer): void {
    const limiter = new UpgradeLimiter(this.options, this.limits.refusals);
    const verify = limiter.verify(() => this.gate.acceptsViewers);
    server.options.verifyClient = (info, done) => {
      if (this.options.scopeId !== undefined) {
        // A scope's own app (/s/<id>/): the list is the main app's.
        done(false, 404, 'Not Found');
        return;
      }
      verify(info, done);
    };
  }

  handleConnection(client: WebSocket): void {
    this.feed.add(client);
  }

  handleDisconnect(client: WebSocket): void {
    this.feed.remove(client);
  }
}
