import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';

/**
 * When images get PixInsight's auto-STF stretch: `auto` when their statistics say linear
 * (deeper than 8 bits, channel medians below 12 % of full scale), `always`, or `never`.
 */
export type StretchMode = 'auto' | 'always' | 'never';

/** The allowed `stretch` values (and `STRETCH` in the environment). */
export const STRETCH_MODES: readonly StretchMode[] = ['auto', 'always', 'never'];

/** The viewer's languages; `auto` follows the visitor's browser only. */
export const VIEWER_LANGUAGES = ['en', 'fr', 'de', 'es', 'it'] as const;
/** One of {@link VIEWER_LANGUAGES}, or `auto`. */
export type ViewerLanguage = 'auto' | (typeof VIEWER_LANGUAGES)[number];
/** The allowed `viewerLanguage` values (and `VIEWER_LANGUAGE` in the environment). */
export const VIEWER_LANGUAGE_CHOICES: readonly ViewerLanguage[] = ['auto', ...VIEWER_LANGUAGES];

/** A Wi-Fi network's name: 1 to 32 bytes (UTF-8), as 802.11 allows. */
export function isWifiSsid(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && Buffer.byteLength(value, 'utf8') <= 32;
}

/** A WPA passphrase: 8 to 63 characters. */
export function isWifiPassword(value: unknown): value is string {
  return typeof value === 'string' && [...value].length >= 8 && [...value].length <= 63;
}

/** How the advertised (displayed) address is chosen among the machine's IPv4 addresses. */
export type DisplayedAddressChoice =
  /** The best-ranked candidate (private LAN first, loopback last). */
  | { mode: 'auto' }
  /** This address while the machine has it; otherwise `auto`, with a warning. */
  | { mode: 'ip'; address: string };

/**
 * Options of {@link ImageServerModule}. Everything is optional when embedding:
 * `resolveImageServerOptions` fills in the defaults listed here.
 */
export interface ImageServerOptions {
  /** TCP port the service binds on all interfaces (`0.0.0.0`). Default `8000`; `0` picks a free port (tests). */
  port: number;
  /** Bind address. Default `0.0.0.0`, so phones on the LAN can reach it. */
  host: string;
  /**
   * When false the module does not bind: the embedding app calls `app.listen()` itself
   * (the default when embedding). When true the module binds `port` itself at START, before
   * writing anything (the standalone app does). Default `false`.
   */
  listen: boolean;
  /** Session work folder, created if missing. Default `./work` (absolute after resolution). */
  workFolder: string;
  /** Folder the viewer files, image and data.json are written to and served from. Default: the work folder. */
  webFolder: string;
  /** Displayed address choice. Default `{ mode: 'auto' }`. */
  displayedAddress: DisplayedAddressChoice;
  /** When set, the advertised URL, whatever the interfaces (e.g. behind a reverse proxy). */
  publicUrl?: string;
  /**
   * Bearer token for the control routes (`/api/...`). When unset, control calls are
   * accepted from a loopback peer only.
   */
  controlToken?: string;
  /** How long STOP waits for clients to close after `{"type":"disconnect"}`. Default 2000 ms, as ALS. */
  disconnectGraceMs: number;
  /** Largest accepted `PUT /api/image` body. Default 64 MB. */
  maxImageBytes: number;
  /** Interval of the WebSocket ping/pong heartbeat; a client that misses one is dropped. Default 30 000 ms. */
  heartbeatIntervalMs: number;
  /** A client whose unsent backlog exceeds this at a broadcast is dropped (a phone gone to sleep). Default 1 MiB. */
  maxClientBacklogBytes: number;
  /** Largest frame a client may send; a larger one closes that client (code 1009). Default 4 KiB. */
  maxClientFrameBytes: number;
  /** Print the advertised URL and a QR code in the terminal at START. Default `true`. */
  printQrCode: boolean;
  /**
   * Largest image decoded, in pixels (width × height; FITS: × planes), checked from the
   * header before any pixel is decoded: a bigger one is refused (413). Default 200 million.
   */
  maxInputPixels: number;
  /** Quality (1-100) of the JPEGs made from PNG and TIFF (or oversized JPEG) images. Default 90. */
  jpegQuality: number;
  /**
   * Longest side, in pixels, of the published image: larger images are downsized so
   * phones can show them. JPEGs within it are published byte for byte. Default 4096.
   */
  maxImageSize: number;
  /**
   * A stacker's output to follow: a file, or a folder where the latest JPEG, PNG, TIFF or
   * FITS to arrive wins. Each new complete image there is published. Unset: no watch. It may not exist
   * yet; it is picked up when it appears. Not together with `demo`.
   */
  watchPath?: string;
  /**
   * How long a watched file's size and modification time must stay unchanged before it
   * counts as complete (the stacker finished writing it). Default 500 ms.
   */
  watchSettleMs: number;
  /**
   * How often the watch checks what `watchPath` is (missing, recreated, a file or a
   * folder), and its polling interval on network shares, where change events are not
   * delivered. Default 1000 ms.
   */
  watchPollIntervalMs: number;
  /** Exposure of each watched image, in seconds: EXPO = images published by the watch × this. Default 0. */
  watchExposureSeconds: number;
  /**
   * Auto-stretch of linear images (FITS, 16-bit or float PNG / TIFF; never 8-bit JPEG):
   * `auto` stretches images whose statistics say linear, `always`, `never`. Default `auto`.
   */
  stretch: StretchMode;
  /** Publish a synthetic live stack (a star field and a galaxy getting cleaner) for a first run without a telescope. Default false. */
  demo: boolean;
  /** Time between two demo frames. Default 3000 ms. */
  demoIntervalMs: number;
  /** Open HTTP/WebSocket connections in all. Default 4096, or the open-files limit less 128 when lower. */
  maxConnections: number;
  /** Open connections from one address (a phone uses about 8). Default 64. */
  maxConnectionsPerAddress: number;
  /** Time a client has to send its request headers. Default 15 000 ms. */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included. Default 120 000 ms. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. Default 5000 ms. */
  keepAliveTimeoutMs: number;
  /** A client reading a response slower than this (over `slowClientWindowMs`) is cut off. Default 1024 B/s. */
  minReadBytesPerSecond: number;
  /** The window the read rate is measured over. Default 20 000 ms. */
  slowClientWindowMs: number;
  /** Viewers (`/ws` connections) in all; more are refused with 503. Default 1000. */
  maxViewers: number;
  /** Viewers from one address; more are refused with 503. Default 8. */
  maxViewersPerAddress: number;
  /** `/ws` upgrades one address may make in a burst; then `upgradesPerSecond` (429 beyond). Default 10. */
  upgradeBurst: number;
  /** Upgrades per second one address regains after its burst. Default 2. */
  upgradesPerSecond: number;
  /** `PUT /api/image` uploads handled at once. Default 2. */
  maxUploadsInFlight: number;
  /** Uploads waiting for a slot; beyond them 503 with `Retry-After`. Default 4. */
  maxUploadsQueued: number;
  /** How often the network interfaces are read again to follow an address change; 0: never. Default 10 000 ms. */
  addressRefreshMs: number;
  /**
   * What START does with an image and data.json left in the web folder by an earlier run:
   * `auto` keeps them (image, metrics) when data.json's `UPDATED` is less than 12 hours old,
   * `always` keeps them whatever their age, `never` writes the waiting image. Default `auto`.
   */
  resume: ResumeMode;
  /**
   * Scale-out: a redis:// or rediss:// URL shared by every replica. Versions, images and
   * announcements then go through Redis. Unset: one process, nothing shared.
   */
  redisUrl?: string;
  /** Prefix of the Redis keys and channel, `[a-z0-9-]{1,40}`. Default `stackcast`. */
  redisNamespace: string;
  /** Serve `GET /metrics` without the control auth (a Prometheus inside a private network). Default false. */
  metricsPublic: boolean;
  /**
   * Edge of the Deep Zoom tiles of each version (`/v/<version>/`), overlap excluded.
   * Default 510 (with `tileOverlap` 1: 512-pixel tiles), chosen by `npm run bench:tiles`.
   */
  tileSize: number;
  /** Pixels each tile shares with its neighbours, so no seam shows when tiles are scaled. Default 1. */
  tileOverlap: number;
  /** Encoding of the tiles. Default `jpeg` (WebP halves the bytes for ~40 % more CPU per publish). */
  tileFormat: 'jpeg' | 'webp';
  /** Encoder quality (1-100) of the tiles. Default 80. */
  tileQuality: number;
  /**
   * Long side (px) up to which a version's levels are cut before `new_image` (from a
   * reduced decode); deeper levels follow in the background or on first request.
   * Default 2048: a 1920×1080 desktop's home view and any phone's.
   */
  homeLevelSize: number;
  /**
   * How many versions (the newest) stay on disk and answer under `/v/`; older ones answer
   * 404. Default 4 (3-8), so a phone in the middle of a download never loses its version.
   */
  keepVersions: number;
  /**
   * How often the viewer count is checked; `{"type":"viewers"}` goes out only when it
   * changed. Default 5000 ms (the most often phones are told); shorter in tests.
   */
  viewerCountIntervalMs: number;
  /** The hotspot's name: `GET /qr-wifi.svg` then joins it. Unset: no Wi-Fi code. */
  wifiSsid?: string;
  /** The hotspot's WPA password (8-63 characters); unset: an open network. Never logged nor shown. */
  wifiPassword?: string;
  /** The viewer's language when neither `?lang=` nor the browser's languages name one it speaks. Default `auto` (English). */
  viewerLanguage: ViewerLanguage;
  // --- history (issue 21) ---
  /**
   * Disk the night's history may use, in MB (previews under `h/`, their index and the cached
   * timelapses): when full it thins out evenly, keeping the first and the latest frames.
   * 0 turns the history off. Default 512.
   */
  historyBudgetMb: number;
  // --- small computers (issue 23) ---
  /** libvips threads per image (`sharp.concurrency`); 0 (the default) leaves libvips' choice, one per core. */
  sharpConcurrency: number;
  // --- relay (issue 20) ---
  /**
   * The hub's scope, `http(s)://host[:port]/s/<id>/`: every publish is also sent there
   * (`PUT <upstreamUrl>api/image`), in the background, newest first. Unset: no relay.
   */
  upstreamUrl?: string;
  /** Bearer token for the hub's scope (its scope token or CONTROL_TOKEN); never logged nor shown. */
  upstreamToken?: string;
  // --- scopes (issue 20) ---
  /**
   * Scope tokens: `{ "<scope id>": "<token>" }`. A scope's token may publish into and control
   * that scope only (403 elsewhere); `controlToken` may do everything. Default none.
   */
  scopeTokens: Record<string, string>;
  /** Scopes live at once, `main` included; a publish that would create one more answers 409. Default 16 (1-64). */
  maxScopes: number;
  /** Internal: set on the app of a scope other than `main` (its id); such an app serves no scopes of its own. */
  scopeId?: string;
}

/** See {@link ImageServerOptions.resume}. */
export type ResumeMode = 'auto' | 'always' | 'never';
export const RESUME_MODES: readonly ResumeMode[] = ['auto', 'always', 'never'];
/** `resume: 'auto'` keeps a session whose last image is younger than this. */
export const RESUME_MAX_AGE_MS = 12 * 3600 * 1000;

export const DEFAULT_PORT = 8000;
export const DEFAULT_WORK_FOLDER = './work';
export const DEFAULT_DISCONNECT_GRACE_MS = 2000;
export const DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_CLIENT_BACKLOG_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CLIENT_FRAME_BYTES = 4 * 1024;
export const DEFAULT_JPEG_QUALITY = 90;
export const DEFAULT_MAX_IMAGE_SIZE = 4096;
export const DEFAULT_MAX_INPUT_PIXELS = 200_000_000;
export const DEFAULT_WATCH_SETTLE_MS = 500;
export const DEFAULT_WATCH_POLL_INTERVAL_MS = 1000;
export const DEFAULT_DEMO_INTERVAL_MS = 3000;
export const DEFAULT_TILE_SIZE = 510;
export const DEFAULT_TILE_OVERLAP = 1;
export const DEFAULT_TILE_QUALITY = 80;
export const DEFAULT_HOME_LEVEL_SIZE = 2048;
export const DEFAULT_KEEP_VERSIONS = 4;
export const DEFAULT_MAX_CONNECTIONS = 4096;
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;
export const DEFAULT_HEADERS_TIMEOUT_MS = 15_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5000;
export const DEFAULT_MIN_READ_BYTES_PER_SECOND = 1024;
export const DEFAULT_SLOW_CLIENT_WINDOW_MS = 20_000;
export const DEFAULT_MAX_VIEWERS = 1000;
export const DEFAULT_MAX_VIEWERS_PER_ADDRESS = 8;
export const DEFAULT_UPGRADE_BURST = 10;
export const DEFAULT_UPGRADES_PER_SECOND = 2;
export const DEFAULT_MAX_UPLOADS_IN_FLIGHT = 2;
export const DEFAULT_MAX_UPLOADS_QUEUED = 4;
export const DEFAULT_ADDRESS_REFRESH_MS = 10_000;
export const DEFAULT_REDIS_NAMESPACE = 'stackcast';
export const DEFAULT_VIEWER_COUNT_INTERVAL_MS = 5000;
export const DEFAULT_HISTORY_BUDGET_MB = 512;
export const DEFAULT_MAX_SCOPES = 16;
/** A scope's id: `main` is the root's. */
export const SCOPE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** The scope of everything served at the root. */
export const MAIN_SCOPE = 'main';
/** A scope token's least length, as CONTROL_TOKEN's. */
export const MIN_SCOPE_TOKEN_LENGTH = 16;

/** Fills in the defaults and makes folders absolute. The only place defaults live. */
export function resolveImageServerOptions(partial: Partial<ImageServerOptions> = {}): ImageServerOptions {
  const workFolder = resolve(partial.workFolder ?? DEFAULT_WORK_FOLDER);
  if (partial.demo === true && partial.watchPath !== undefined) {
    throw new Error('ImageServer options: `demo` and `watchPath` cannot both be set; choose one image source');
  }
  const options: ImageServerOptions = {
    port: partial.port ?? DEFAULT_PORT,
    host: partial.host ?? '0.0.0.0',
    listen: partial.listen ?? false,
    workFolder,
    webFolder: resolve(partial.webFolder ?? workFolder),
    displayedAddress: partial.displayedAddress ?? { mode: 'auto' },
    publicUrl: partial.publicUrl,
    controlToken: partial.controlToken,
    disconnectGraceMs: partial.disconnectGraceMs ?? DEFAULT_DISCONNECT_GRACE_MS,
    maxImageBytes: partial.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES,
    heartbeatIntervalMs: partial.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    maxClientBacklogBytes: partial.maxClientBacklogBytes ?? DEFAULT_MAX_CLIENT_BACKLOG_BYTES,
    maxClientFrameBytes: partial.maxClientFrameBytes ?? DEFAULT_MAX_CLIENT_FRAME_BYTES,
    printQrCode: partial.printQrCode ?? true,
    jpegQuality: partial.jpegQuality ?? DEFAULT_JPEG_QUALITY,
    maxImageSize: partial.maxImageSize ?? DEFAULT_MAX_IMAGE_SIZE,
    maxInputPixels: partial.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS,
    watchPath: partial.watchPath === undefined ? undefined : resolve(partial.watchPath),
    watchSettleMs: partial.watchSettleMs ?? DEFAULT_WATCH_SETTLE_MS,
    watchPollIntervalMs: partial.watchPollIntervalMs ?? DEFAULT_WATCH_POLL_INTERVAL_MS,
    watchExposureSeconds: partial.watchExposureSeconds ?? 0,
    stretch: partial.stretch ?? 'auto',
    demo: partial.demo ?? false,
    demoIntervalMs: partial.demoIntervalMs ?? DEFAULT_DEMO_INTERVAL_MS,
    tileSize: partial.tileSize ?? DEFAULT_TILE_SIZE,
    tileOverlap: partial.tileOverlap ?? DEFAULT_TILE_OVERLAP,
    tileFormat: partial.tileFormat ?? 'jpeg',
    tileQuality: partial.tileQuality ?? DEFAULT_TILE_QUALITY,
    homeLevelSize: partial.homeLevelSize ?? DEFAULT_HOME_LEVEL_SIZE,
    keepVersions: partial.keepVersions ?? DEFAULT_KEEP_VERSIONS,
    maxConnections: partial.maxConnections ?? defaultMaxConnections(),
    maxConnectionsPerAddress: partial.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    headersTimeoutMs: partial.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: partial.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: partial.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    minReadBytesPerSecond: partial.minReadBytesPerSecond ?? DEFAULT_MIN_READ_BYTES_PER_SECOND,
    slowClientWindowMs: partial.slowClientWindowMs ?? DEFAULT_SLOW_CLIENT_WINDOW_MS,
    maxViewers: partial.maxViewers ?? DEFAULT_MAX_VIEWERS,
    maxViewersPerAddress: partial.maxViewersPerAddress ?? DEFAULT_MAX_VIEWERS_PER_ADDRESS,
    upgradeBurst: partial.upgradeBurst ?? DEFAULT_UPGRADE_BURST,
    upgradesPerSecond: partial.upgradesPerSecond ?? DEFAULT_UPGRADES_PER_SECOND,
    maxUploadsInFlight: partial.maxUploadsInFlight ?? DEFAULT_MAX_UPLOADS_IN_FLIGHT,
    maxUploadsQueued: partial.maxUploadsQueued ?? DEFAULT_MAX_UPLOADS_QUEUED,
    addressRefreshMs: partial.addressRefreshMs ?? DEFAULT_ADDRESS_REFRESH_MS,
    resume: partial.resume ?? 'auto',
    redisUrl: partial.redisUrl,
    redisNamespace: partial.redisNamespace ?? DEFAULT_REDIS_NAMESPACE,
    metricsPublic: partial.metricsPublic ?? false,
    viewerCountIntervalMs: partial.viewerCountIntervalMs ?? DEFAULT_VIEWER_COUNT_INTERVAL_MS,
    wifiSsid: partial.wifiSsid,
    wifiPassword: partial.wifiPassword,
    viewerLanguage: partial.viewerLanguage ?? 'auto',
    historyBudgetMb: partial.historyBudgetMb ?? DEFAULT_HISTORY_BUDGET_MB,
    sharpConcurrency: partial.sharpConcurrency ?? 0,
    upstreamUrl: partial.upstreamUrl === undefined ? undefined : (upstreamUrl(partial.upstreamUrl) ?? partial.upstreamUrl),
    upstreamToken: partial.upstreamToken,
    scopeTokens: partial.scopeTokens ?? {},
    maxScopes: partial.maxScopes ?? DEFAULT_MAX_SCOPES,
    scopeId: partial.scopeId,
  };
  const problems = [...optionProblems(options), ...redisProblems(options), ...visitorProblems(options), ...relayProblems(options), ...scopeProblems(options)];
  if (options.tileFormat !== 'jpeg' && options.tileFormat !== 'webp') {
    problems.push(`tileFormat=${JSON.stringify(options.tileFormat)} is invalid: expected "jpeg" or "webp"`);
  }
  if (problems.length > 0) {
    throw new Error(`ImageServer options: ${problems.join('; ')}`);
  }
  return options;
}

/** A numeric option's allowed values. */
export interface OptionRange {
  min: number;
  max: number;
  integer: boolean;
}

/**
 * Every numeric option's range: the one place they are written. `resolveImageServerOptions`
 * checks options given in code against it, and the environment schema (env.validation.ts)
 * builds its checks and its error text from it.
 */
export const OPTION_RANGES = {
  port: { min: 0, max: 65535, integer: true },
  disconnectGraceMs: { min: 0, max: 60_000, integer: false },
  maxImageBytes: { min: 1024, max: 1024 ** 3, integer: true },
  heartbeatIntervalMs: { min: 0, max: 3_600_000, integer: false },
  maxClientBacklogBytes: { min: 0, max: 1024 ** 3, integer: true },
  maxClientFrameBytes: { min: 16, max: 1024 ** 2, integer: true },
  jpegQuality: { min: 1, max: 100, integer: true },
  maxImageSize: { min: 64, max: 65_500, integer: true },
  maxInputPixels: { min: 65_536, max: 1_000_000_000, integer: true },
  watchSettleMs: { min: 10, max: 600_000, integer: false },
  watchPollIntervalMs: { min: 50, max: 600_000, integer: false },
  watchExposureSeconds: { min: 0, max: Number.MAX_SAFE_INTEGER, integer: false },
  demoIntervalMs: { min: 100, max: 3_600_000, integer: false },
  tileSize: { min: 64, max: 2048, integer: true },
  tileOverlap: { min: 0, max: 8, integer: true },
  tileQuality: { min: 1, max: 100, integer: true },
  homeLevelSize: { min: 64, max: 65_500, integer: true },
  keepVersions: { min: 3, max: 8, integer: true },
  maxConnections: { min: 16, max: 1_000_000, integer: true },
  maxConnectionsPerAddress: { min: 2, max: 1_000_000, integer: true },
  headersTimeoutMs: { min: 100, max: 600_000, integer: false },
  requestTimeoutMs: { min: 100, max: 3_600_000, integer: false },
  keepAliveTimeoutMs: { min: 100, max: 600_000, integer: false },
  minReadBytesPerSecond: { min: 0, max: 1024 ** 3, integer: false },
  slowClientWindowMs: { min: 100, max: 600_000, integer: false },
  maxViewers: { min: 1, max: 1_000_000, integer: true },
  maxViewersPerAddress: { min: 1, max: 1_000_000, integer: true },
  upgradeBurst: { min: 1, max: 1_000_000, integer: true },
  upgradesPerSecond: { min: 0.01, max: 1_000_000, integer: false },
  maxUploadsInFlight: { min: 1, max: 64, integer: true },
  maxUploadsQueued: { min: 0, max: 1024, integer: true },
  addressRefreshMs: { min: 0, max: 3_600_000, integer: false },
  viewerCountIntervalMs: { min: 10, max: 60_000, integer: false },
  // In code a fraction of a MB is allowed (tests); HISTORY_BUDGET_MB is an integer.
  historyBudgetMb: { min: 0, max: 100_000, integer: false },
  sharpConcurrency: { min: 0, max: 256, integer: true },
  maxScopes: { min: 1, max: 64, integer: true },
} as const satisfies { [K in keyof ImageServerOptions]?: OptionRange };

/** The standalone app's `PORT` leaves out the privileged ports (0, "any free port", is allowed on its own). */
export const ENV_PORT_MIN = 1024;

/** The soft limit on open files, or undefined off Linux. */
function openFilesLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** 4096, or less when the process may open fewer files: the cap must bite before EMFILE does. */
function defaultMaxConnections(): number {
  const files = openFilesLimit();
  return files === undefined ? DEFAULT_MAX_CONNECTIONS : Math.max(16, Math.min(DEFAULT_MAX_CONNECTIONS, files - 128));
}

function optionProblems(options: ImageServerOptions): string[] {
  const problems: string[] = [];
  if (!STRETCH_MODES.includes(options.stretch)) {
    problems.push(`stretch=${JSON.stringify(options.stretch)} is invalid: expected one of ${STRETCH_MODES.join(', ')}`);
  }
  for (const [name, { min, max, integer }] of Object.entries(OPTION_RANGES) as [keyof ImageServerOptions, OptionRange][]) {
    const value = options[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      problems.push(`${name}=${typeof value === 'number' ? String(value) : JSON.stringify(value)} is invalid: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
  }
  if (!RESUME_MODES.includes(options.resume)) {
    problems.push(`resume=${JSON.stringify(options.resume)} is invalid: expected ${RESUME_MODES.join(', ')}`);
  }
  return problems;
}

function redisProblems({ redisUrl, redisNamespace, scopeId }: ImageServerOptions): string[] {
  const problems: string[] = [];
  if (redisUrl !== undefined && !isRedisUrl(redisUrl)) {
    problems.push('redisUrl is invalid: expected a redis:// or rediss:// URL');
  }
  // A scope's namespace is its parent's (up to 40) plus `-s-<id>` (see scopeRedisNamespace).
  if (scopeId !== undefined) {
    if (!SCOPE_REDIS_NAMESPACE_PATTERN.test(redisNamespace)) {
      problems.push(`redisNamespace=${JSON.stringify(redisNamespace)} is invalid for scope "${scopeId}": expected <the main namespace>-s-<scope id>`);
    }
  } else if (!REDIS_NAMESPACE_PATTERN.test(redisNamespace)) {
    problems.push(`redisNamespace=${JSON.stringify(redisNamespace)} is invalid: expected 1 to 40 characters from a-z, 0-9 and -`);
  }
  return problems;
}

function visitorProblems({ wifiSsid, wifiPassword, viewerLanguage }: ImageServerOptions): string[] {
  const problems: string[] = [];
  if (wifiSsid !== undefined && !isWifiSsid(wifiSsid)) {
    problems.push(`wifiSsid=${JSON.stringify(wifiSsid)} is invalid: expected 1 to 32 bytes (UTF-8)`);
  }
  if (wifiPassword !== undefined && !isWifiPassword(wifiPassword)) {
    // Never the password itself, not even a wrong one.
    problems.push(`wifiPassword (${typeof wifiPassword === 'string' ? `${[...wifiPassword].length} characters` : typeof wifiPassword}) is invalid: expected 8 to 63 characters`);
  }
  if (wifiPassword !== undefined && wifiSsid === undefined) {
    problems.push('wifiPassword is set without wifiSsid: expected both, or wifiSsid alone for an open network');
  }
  if (!VIEWER_LANGUAGE_CHOICES.includes(viewerLanguage)) {
    problems.push(`viewerLanguage=${JSON.stringify(viewerLanguage)} is invalid: expected one of ${VIEWER_LANGUAGE_CHOICES.join(', ')}`);
  }
  return problems;
}

function relayProblems({ upstreamUrl: url, upstreamToken: token }: ImageServerOptions): string[] {
  const problems: string[] = [];
  if (url !== undefined && upstreamUrl(url) === undefined) {
    problems.push(`upstreamUrl=${JSON.stringify(url)} is invalid: expected ${UPSTREAM_URL_RULE}`);
  }
  if (token !== undefined && !isUpstreamToken(token)) {
    // Never the token itself, not even a wrong one.
    problems.push(`upstreamToken (${typeof token === 'string' ? `${token.length} characters` : typeof token}) is invalid: expected ${UPSTREAM_TOKEN_RULE}`);
  }
  if (token !== undefined && url === undefined) {
    problems.push('upstreamToken is set without upstreamUrl: expected both, or upstreamUrl alone (the hub then takes publishes from its own loopback only)');
  }
  return problems;
}

/** What UPSTREAM_URL allows, for error messages. */
export const UPSTREAM_URL_RULE =
  'the URL of a scope on the hub, http(s)://host[:port]/s/<id>/ with <id> 1 to 32 characters from a-z, 0-9 and - (not starting with -), no user:password@, query or #';
/** What UPSTREAM_TOKEN allows, for error messages. */
export const UPSTREAM_TOKEN_RULE = 'a token of 16 to 1024 printable characters without spaces (the hub\'s scope token or CONTROL_TOKEN)';

/** The scope's URL with its trailing slash, or undefined when `value` is not `http(s)://host[:port]/s/<id>/`. */
export function upstreamUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') {
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  const valid =
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.hostname !== '' &&
    url.username === '' &&
    url.password === '' &&
    url.search === '' &&
    url.hash === '' &&
    !/[?#]/.test(value) &&
    /^\/s\/[a-z0-9][a-z0-9-]{0,31}\/?$/.test(url.pathname);
  return valid ? `${url.origin}${url.pathname.replace(/\/?$/, '/')}` : undefined;
}

/** A bearer token that fits in a header: 16 to 1024 visible ASCII characters. */
export function isUpstreamToken(value: unknown): boolean {
  return typeof value === 'string' && /^[\x21-\x7e]{16,1024}$/.test(value);
}

/** Injection token of the resolved {@link ImageServerOptions}. */
export const IMAGE_SERVER_OPTIONS = 'STACKCAST_IMAGE_SERVER_OPTIONS';

/** A redis:// or rediss:// URL with a host. */
export function isRedisUrl(value: unknown): boolean {
  if (typeof value !== 'string') {
    return false;
  }
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Redis key and channel prefix. */
export const REDIS_NAMESPACE_PATTERN = /^[a-z0-9-]{1,40}$/;
const SCOPE_REDIS_NAMESPACE_PATTERN = /^[a-z0-9-]{1,40}-s-[a-z0-9][a-z0-9-]{0,31}$/;

/** The Redis namespace of scope `id` of a service whose namespace is `parent`. */
export function scopeRedisNamespace(parent: string, id: string): string {
  return `${parent}-s-${id}`;
}

/**
 * What is wrong with `SCOPE_TOKENS`-style text (`id=token,id=token`), or its map. The
 * problems name ids and lengths, never a token.
 */
export function parseScopeTokens(text: string): { tokens: Record<string, string>; problems: string[] } {
  const tokens: Record<string, string> = {};
  const problems: string[] = [];
  const entries = text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  entries.forEach((entry, i) => {
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      problems.push(`entry ${i + 1} is not id=token`);
      return;
    }
    const id = entry.slice(0, eq).trim();
    const token = entry.slice(eq + 1).trim();
    problems.push(...scopeTokenProblems(id, token, tokens, `entry ${i + 1}`));
    tokens[id] = token;
  });
  if (entries.length === 0) {
    problems.push('no id=token entry');
  }
  return { tokens, problems };
}

function scopeTokenProblems(id: string, token: unknown, seen: Record<string, string>, where: string): string[] {
  const problems: string[] = [];
  const shownId = SCOPE_ID_PATTERN.test(id) ? `"${id}"` : `(${id.length} characters)`;
  if (!SCOPE_ID_PATTERN.test(id)) {
    problems.push(`${where}: the id ${shownId} does not match ${SCOPE_ID_PATTERN.source}`);
  }
  if (typeof token !== 'string' || [...token].length < MIN_SCOPE_TOKEN_LENGTH) {
    problems.push(`${where}: the token of ${shownId} has ${typeof token === 'string' ? [...token].length : 0} characters, at least ${MIN_SCOPE_TOKEN_LENGTH} are needed`);
  }
  if (Object.hasOwn(seen, id)) {
    problems.push(`${where}: the id ${shownId} is given twice`);
  }
  return problems;
}

function scopeProblems({ scopeTokens, scopeId }: ImageServerOptions): string[] {
  const problems: string[] = [];
  const seen: Record<string, string> = {};
  for (const [id, token] of Object.entries(scopeTokens)) {
    problems.push(...scopeTokenProblems(id, token, seen, 'scopeTokens').map((p) => `${p} (expected { "<scope id>": "<token of 16+ characters>" })`));
    seen[id] = token;
  }
  if (scopeId !== undefined && (!SCOPE_ID_PATTERN.test(scopeId) || scopeId === MAIN_SCOPE)) {
    problems.push(`scopeId=${JSON.stringify(scopeId)} is invalid: expected ${SCOPE_ID_PATTERN.source}, not "${MAIN_SCOPE}"`);
  }
  return problems;
}
