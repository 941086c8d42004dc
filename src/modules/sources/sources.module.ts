import { Module } from '@nestjs/common';
import { ImageNotifierModule } from '../image-notifier/image-notifier.module.js';
import { DemoSourceService } from './demo-source.service.js';
import { FileWatcher } from './file-watcher.js';
import { FolderWatchService } from './folder-watch.service.js';
import { ImageSources } from './image-sources.service.js';

/** Images that come by themselves: the folder watch and the demo sky, both publishing through ImageNotifier. */
@Module({
  imports: [ImageNotifierModule],
  providers: [FileWatcher, FolderWatchService, DemoSourceService, ImageSources],
  exports: [ImageSources],
})
export class SourcesModule {}
