import { Injectable } from '@nestjs/common';
import { DemoSourceService, type DemoStatus } from './demo-source.service.js';
import { FolderWatchService, type WatchStatus } from './folder-watch.service.js';

/**
 * Where images come from. `push` is always open (ImageNotifier, `PUT /api/image`); it is
 * the only source unless the service follows a stacker's folder (`watch`) or makes up a
 * sky (`demo`).
 */
export type ImageSourceKind = 'push' | 'watch' | 'demo';

/** The source part of `/status`: the kind, and the details of the automatic one. */
export interface SourceReport {
  source: ImageSourceKind;
  watch?: WatchStatus;
  demo?: DemoStatus;
}

/** Tells which image source is active, for `/status`. */
@Injectable()
export class ImageSources {
  constructor(
    private readonly watch: FolderWatchService,
    private readonly demo: DemoSourceService,
  ) {}

  get active(): ImageSourceKind {
    return this.demo.enabled ? 'demo' : this.watch.enabled ? 'watch' : 'push';
  }

  report(): SourceReport {
    const source = this.active;
    switch (source) {
      case 'watch':
        return { source, watch: this.watch.status() };
      case 'demo':
        return { source, demo: this.demo.status() };
      case 'push':
        return { source };
      default: {
        const unreachable: never = source;
        throw new Error(`unknown source ${String(unreachable)}`);
      }
    }
  }
}
