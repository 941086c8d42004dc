import { Module } from '@nestjs/common';
import { RelayService } from './relay.service.js';

/**
 * The relay to a hub (`upstreamUrl`): VersionWriter offers it every version it writes for
 * a publish taken here; `/status` reads its state. Inert without `upstreamUrl`.
 */
@Module({
  providers: [RelayService],
  exports: [RelayService],
})
export class RelayModule {}
