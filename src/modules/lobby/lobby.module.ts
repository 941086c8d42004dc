import { Module } from '@nestjs/common';
import { HttpLimitsModule } from '../../shared/http-limits/http-limits.module.js';
import { ViewerGateModule } from '../../shared/viewer-gate/viewer-gate.module.js';
import { ScopesModule } from '../scopes/scopes.module.js';
import { LobbyFeed } from './lobby-feed.service.js';
import { LobbyGateway } from './lobby.gateway.js';

/** `/scopes/ws`: the live list of scopes for the lobby (`/scopes`) and the wall (`/wall`), whose pages WebAssetsModule serves. */
@Module({
  imports: [ScopesModule, ViewerGateModule, HttpLimitsModule],
  providers: [LobbyFeed, LobbyGateway],
})
export class LobbyModule {}
