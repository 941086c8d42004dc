import { resolve } from 'node:path';
import { DEFAULT_WORK_FOLDER, parseScopeTokens, type DisplayedAddressChoice, type ImageServerOptions } from './image-server-options.js';
import type { EnvironmentVariables } from './env.validation.js';

/** Maps the validated environment onto the module options; unset values keep their defaults. */
export function optionsFromEnvironment(env: EnvironmentVariables): Partial<ImageServerOptions> {
  const displayedAddress: DisplayedAddressChoice =
    env.DISPLAYED_ADDRESS?.startsWith('ip:') === true
      ? { mode: 'ip', address: env.DISPLAYED_ADDRESS.slice(3) }
      : { mode: 'auto' };
  return {
    // The standalone app binds its own port at START (bind before write, PortInUseError).
    listen: true,
    port: env.PORT,
    workFolder: env.WORK_FOLDER,
    // WEB_FOLDER is ignored unless WEB_DEDICATED=true: the work folder is then the web folder.
    webFolder: env.WEB_DEDICATED === true ? env.WEB_FOLDER : env.WORK_FOLDER,
    displayedAddress,
    publicUrl: env.PUBLIC_URL,
    controlToken: env.CONTROL_TOKEN,
    maxImageBytes: env.MAX_IMAGE_BYTES,
    jpegQuality: env.JPEG_QUALITY,
    maxImageSize: env.MAX_IMAGE_SIZE,
    maxInputPixels: env.MAX_INPUT_PIXELS,
    watchPath: env.WATCH_PATH,
    watchSettleMs: env.WATCH_SETTLE_MS,
    watchPollIntervalMs: env.WATCH_POLL_MS,
    watchExposureSeconds: env.WATCH_EXPOSURE,
    demo: env.DEMO,
    demoIntervalMs: env.DEMO_INTERVAL_MS,
    keepVersions: env.KEEP_VERSIONS,
    maxViewers: env.MAX_VIEWERS,
    maxViewersPerAddress: env.MAX_VIEWERS_PER_ADDRESS,
    maxConnections: env.MAX_CONNECTIONS,
    maxConnectionsPerAddress: env.MAX_CONNECTIONS_PER_ADDRESS,
    maxUploadsInFlight: env.MAX_UPLOADS_IN_FLIGHT,
    upgradeBurst: env.UPGRADE_BURST,
    upgradesPerSecond: env.UPGRADES_PER_SECOND,
    resume: env.RESUME,
    stretch: env.STRETCH,
    redisUrl: env.REDIS_URL,
    redisNamespace: env.REDIS_NAMESPACE,
    metricsPublic: env.METRICS_PUBLIC,
    wifiSsid: env.WIFI_SSID,
    wifiPassword: env.WIFI_PASSWORD,
    viewerLanguage: env.VIEWER_LANGUAGE,
    historyBudgetMb: env.HISTORY_BUDGET_MB,
    sharpConcurrency: env.SHARP_CONCURRENCY,
    upstreamUrl: env.UPSTREAM_URL,
    upstreamToken: env.UPSTREAM_TOKEN,
    scopeTokens: env.SCOPE_TOKENS === undefined ? undefined : parseScopeTokens(env.SCOPE_TOKENS).tokens,
    maxScopes: env.MAX_SCOPES,
    // A terminal QR code would break one-JSON-object-per-line logs.
    printQrCode: env.LOG_FORMAT === 'json' ? false : undefined,
  };
}

/** Where the HTTPS certificate comes from, as the configuration says. */
export type TlsSource =
  | { kind: 'files'; certFile: string; keyFile: string }
  /** Made once and kept in `folder`. */
  | { kind: 'self-signed'; folder: string };

/** Where the HTTPS certificate comes from, or undefined for plain HTTP. */
export function tlsFromEnvironment(env: EnvironmentVariables): TlsSource | undefined {
  if (env.TLS_CERT_FILE !== undefined && env.TLS_KEY_FILE !== undefined) {
    return { kind: 'files', certFile: resolve(env.TLS_CERT_FILE), keyFile: resolve(env.TLS_KEY_FILE) };
  }
  if (env.TLS_SELF_SIGNED === true) {
    return { kind: 'self-signed', folder: resolve(env.WORK_FOLDER ?? DEFAULT_WORK_FOLDER, 'tls') };
  }
  return undefined;
}
