import { Inject, Injectable } from '@nestjs/common';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { BroadcastService } from '../../gateway/broadcast.service.js';
import { WebAssetsService } from '../web-assets/web-assets.service.js';
import { ScopeDirectory, type ScopeListing } from './scope-directory.js';

/** The pyramid level whose image is at most 256 px on its long side (one tile at the default tile size). */
const THUMBNAIL_LEVEL = 8;

/** The one scope of a server without scopes: `main`, at the root. */
@Injectable()
export class MainScopeDirectory extends ScopeDirectory {
  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly assets: WebAssetsService,
    private readonly broadcast: BroadcastService,
  ) {
    super();
  }

  list(): ScopeListing[] {
    const s = this.assets.session;
    const extension = this.options.tileFormat === 'webp' ? 'webp' : 'jpeg';
    return [
      {
        id: 'main',
        title: null,
        object: s.object,
        version: s.version,
        stackSize: s.stackSize,
        exposure: s.exposureSeconds,
        viewers: this.broadcast.count,
        updated: s.lastImageAt?.toISOString() ?? null,
        thumbnail: s.version === null ? null : `/v/${s.version}/image_files/${THUMBNAIL_LEVEL}/0_0.${extension}`,
      },
    ];
  }
}
