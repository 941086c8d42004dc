import { Module } from '@nestjs/common';
import { BroadcastModule } from '../../gateway/broadcast.module.js';
import { HttpLimitsModule } from '../../shared/http-limits/http-limits.module.js';
import { ViewerGateModule } from '../../shared/viewer-gate/viewer-gate.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { LobbyFeed } from './lobby-feed.service.js';
import { LobbyGateway } from './lobby.gateway.js';
import { MainScopeDirectory } from './main-scope.directory.js';
import { ScopeDirectory } from './scope-directory.js';

/** `/scopes/ws`: the live list of scopes for the lobby (`/scopes`) and the wall (`/wall`), whose pages WebAssetsModule serves. */
@Module({
  imports: [WebAssetsModule, BroadcastModule, ViewerGateModule, HttpLimitsModule],
  providers: [{ provide: ScopeDirectory, useClass: MainScopeDirectory }, LobbyFeed, LobbyGateway],
})
export class LobbyModule {}
