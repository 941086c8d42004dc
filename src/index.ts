export { ImageServerModule, type ImageServerModuleOptions } from './image-server.module.js';
export { ImageNotifier, type ImageMetrics, type PublishOptions } from './modules/image-notifier/image-notifier.service.js';
export { ImageRejectedError, type ImageRejection } from './modules/image-notifier/image-rejected.error.js';
export { InvalidMetricsError } from './modules/web-assets/web-assets.service.js';
export { PortInUseError, PortBindError } from './modules/lifecycle/port-in-use.error.js';
export { ServerLifecycle, type LifecycleState, type StopReport } from './modules/lifecycle/server-lifecycle.service.js';
export {
  IMAGE_SERVER_OPTIONS,
  resolveImageServerOptions,
  type DisplayedAddressChoice,
  type ImageServerOptions,
  type ViewerLanguage,
} from './config/image-server-options.js';
export { setupApiDocs, API_DOCS_PATH } from './modules/status/api-docs.js';
export { ViewerWsAdapter } from './gateway/viewer-ws.adapter.js';
export type { ServerMessage } from './gateway/server-message.js';
/** Scale-out (REDIS_URL): a publish refused while Redis is unreachable (HTTP 503, nothing changed). */
export { ClusterUnavailableError } from './modules/cluster/cluster-unavailable.error.js';
/** The Prometheus registry behind `GET /metrics`, for an embedding app that exposes its own. */
export { MetricsService } from './modules/metrics/metrics.service.js';
export {
  ViewerSessions,
  CURRENT_VERSION,
  type CurrentVersionSource,
  type ClientMessage,
  type ServerStoppedReport,
  type ViewerEvent,
  type ViewerInfo,
} from './gateway/viewer-sessions.service.js';
/** Scopes (several telescopes, `/s/<id>/`): the live list and its changes, for a lobby. */
export { ScopesService, type ScopeSummary } from './modules/scopes/scopes.service.js';
