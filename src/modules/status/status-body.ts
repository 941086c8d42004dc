import type { ViewerLanguage } from '../../config/image-server-options.js';
import type { ClusterStatus } from '../cluster/cluster.service.js';
import type { LifecycleState } from '../lifecycle/server-lifecycle.service.js';
import type { AdvertisedAddress } from '../network-info/network-info.service.js';
import type { UpstreamStatus } from '../relay/relay.service.js';
import type { DemoStatus } from '../sources/demo-source.service.js';
import type { WatchStatus } from '../sources/folder-watch.service.js';
import type { ImageSourceKind } from '../sources/image-sources.service.js';
import type { StorageProblem } from '../web-assets/web-assets.service.js';
import type { ScopeSummary } from '../../shared/scope-hooks/scope-hooks.js';

/** The body of `GET /status`. */
export interface StatusBody {
  status: LifecycleState;
  port: number;
  url: string;
  displayedAddress: string;
  limitedAccess: boolean;
  addresses: AdvertisedAddress[];
  warnings: string[];
  /** `ok`, or why the web folder cannot be written (see the warnings). */
  storage: 'ok' | StorageProblem;
  clients: number;
  stackSize: number;
  exposure: string;
  exposureSeconds: number;
  imagesPublished: number;
  lastImageAt: string | null;
  /** Version of the image on disk (`/v/<version>/`); null while the waiting image is shown. */
  version: number | null;
  /** The object the image shown names (data.json `OBJECT`); null when none is known. */
  object: string | null;
  uptimeSeconds: number;
  /** Where images come from: `push` (ImageNotifier / PUT /api/image only), `watch` or `demo`. */
  source: ImageSourceKind;
  /** With `source: "watch"`: the watched path and what the watch did. */
  watch?: WatchStatus;
  /** With `source: "demo"`: the interval and the frames so far. */
  demo?: DemoStatus;
  /** With REDIS_URL: whether this replica reaches Redis, and its id. */
  cluster?: ClusterStatus;
  /** With WIFI_SSID: the hotspot's name (`/qr-wifi.svg` joins it); never its password. Otherwise null. */
  wifi: { ssid: string } | null;
  /** VIEWER_LANGUAGE: the viewer's language when the visitor's browser names none it speaks. */
  viewerLanguage: ViewerLanguage;
  /** The relay to the hub (UPSTREAM_URL): `off` without it; never the token. */
  upstream: UpstreamStatus;
  /** Every live scope (as `GET /api/scopes`), main first; left out in a scope's own `/s/<id>/status`. */
  scopes?: ScopeSummary[];
}
