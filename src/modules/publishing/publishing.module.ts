import { Module } from '@nestjs/common';
import { BroadcastModule } from '../../gateway/broadcast.module.js';
import { HistoryModule } from '../history/history.module.js';
import { RelayModule } from '../relay/relay.module.js';
import { WebAssetsModule } from '../web-assets/web-assets.module.js';
import { LocalPublisher } from './local-publisher.service.js';
import { VersionWriter } from './version-writer.service.js';

/**
 * Writing versions: {@link VersionWriter} (the one place a version is applied) and the
 * single-process {@link LocalPublisher}. ClusterModule builds its publisher on the same writer.
 */
@Module({
  imports: [WebAssetsModule, BroadcastModule, HistoryModule, RelayModule],
  providers: [VersionWriter, LocalPublisher],
  exports: [VersionWriter, LocalPublisher],
})
export class PublishingModule {}
