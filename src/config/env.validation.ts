import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Max,
  Min,
  MinLength,
  ValidateBy,
  ValidateIf,
  validateSync,
  type ValidationError,
} from 'class-validator';
import { statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import {
  ENV_PORT_MIN,
  isRedisUrl,
  isUpstreamToken,
  isWifiPassword,
  isWifiSsid,
  MIN_SCOPE_TOKEN_LENGTH,
  OPTION_RANGES,
  parseScopeTokens,
  REDIS_NAMESPACE_PATTERN,
  SCOPE_ID_PATTERN,
  RESUME_MODES,
  STRETCH_MODES,
  VIEWER_LANGUAGE_CHOICES,
  type ResumeMode,
  type StretchMode,
  type ViewerLanguage,
  upstreamUrl,
  UPSTREAM_TOKEN_RULE,
  UPSTREAM_URL_RULE,
} from './image-server-options.js';

type RangedOption = keyof typeof OPTION_RANGES;

/** The environment variable's range: the option's, with `min` raised where the variable is stricter. */
function envRange(option: RangedOption, min?: number): { min: number; max: number } {
  return { min: min ?? OPTION_RANGES[option].min, max: OPTION_RANGES[option].max };
}

const RANGE = {
  PORT: envRange('port', ENV_PORT_MIN),
  MAX_IMAGE_BYTES: envRange('maxImageBytes'),
  JPEG_QUALITY: envRange('jpegQuality'),
  MAX_IMAGE_SIZE: envRange('maxImageSize'),
  MAX_INPUT_PIXELS: envRange('maxInputPixels'),
  WATCH_EXPOSURE: envRange('watchExposureSeconds'),
  WATCH_SETTLE_MS: envRange('watchSettleMs'),
  WATCH_POLL_MS: envRange('watchPollIntervalMs'),
  DEMO_INTERVAL_MS: envRange('demoIntervalMs'),
  KEEP_VERSIONS: envRange('keepVersions'),
  MAX_VIEWERS: envRange('maxViewers'),
  MAX_VIEWERS_PER_ADDRESS: envRange('maxViewersPerAddress'),
  MAX_CONNECTIONS: envRange('maxConnections'),
  MAX_CONNECTIONS_PER_ADDRESS: envRange('maxConnectionsPerAddress'),
  MAX_UPLOADS_IN_FLIGHT: envRange('maxUploadsInFlight'),
  UPGRADE_BURST: envRange('upgradeBurst'),
  UPGRADES_PER_SECOND: envRange('upgradesPerSecond'),
  HISTORY_BUDGET_MB: envRange('historyBudgetMb'),
  SHARP_CONCURRENCY: envRange('sharpConcurrency'),
  MAX_SCOPES: envRange('maxScopes'),
};

/** `@Min` and `@Max` of a variable, from {@link RANGE}. */
function InRange(variable: keyof typeof RANGE): PropertyDecorator {
  return (target, key) => {
    Min(RANGE[variable].min)(target, key);
    Max(RANGE[variable].max)(target, key);
  };
}

const between = (variable: keyof typeof RANGE, what: string): string => `${what} from ${RANGE[variable].min} to ${RANGE[variable].max}`;

/** Thrown when the environment holds invalid settings; `lines` has one line per bad variable. */
export class ConfigValidationError extends Error {
  constructor(readonly lines: string[]) {
    super(`Invalid configuration:\n${lines.join('\n')}`);
    this.name = 'ConfigValidationError';
  }
}

/** What each variable allows, worded for the one-line error a user reads. */
const ALLOWED: Record<keyof EnvironmentVariables, string> = {
  PORT: `${between('PORT', 'an integer')}, or 0 for any free port (the log names the one taken)`,
  WORK_FOLDER: 'a folder path (an existing folder, or none yet), not a file',
  WEB_DEDICATED: '"true" or "false"',
  WEB_FOLDER: 'a folder path, not a file (required when WEB_DEDICATED=true)',
  DISPLAYED_ADDRESS: '"auto" or "ip:<IPv4 address>", e.g. ip:192.168.1.20',
  PUBLIC_URL: 'an absolute http:// or https:// URL, e.g. https://sky.example.org',
  CONTROL_TOKEN: 'a string of at least 16 characters',
  MAX_IMAGE_BYTES: between('MAX_IMAGE_BYTES', 'an integer number of bytes'),
  JPEG_QUALITY: between('JPEG_QUALITY', 'an integer'),
  MAX_IMAGE_SIZE: between('MAX_IMAGE_SIZE', 'an integer number of pixels'),
  MAX_INPUT_PIXELS: between('MAX_INPUT_PIXELS', 'an integer number of pixels (width × height)'),
  WATCH_PATH: 'a file or folder path',
  WATCH_EXPOSURE: 'a number of seconds ≥ 0, e.g. 30 or 2.5',
  WATCH_SETTLE_MS: between('WATCH_SETTLE_MS', 'an integer number of milliseconds'),
  WATCH_POLL_MS: between('WATCH_POLL_MS', 'an integer number of milliseconds'),
  DEMO: '"true" or "false", and not true together with WATCH_PATH (one image source at a time)',
  DEMO_INTERVAL_MS: between('DEMO_INTERVAL_MS', 'an integer number of milliseconds'),
  KEEP_VERSIONS: between('KEEP_VERSIONS', 'an integer number of versions'),
  MAX_VIEWERS: between('MAX_VIEWERS', 'an integer'),
  MAX_VIEWERS_PER_ADDRESS: between('MAX_VIEWERS_PER_ADDRESS', 'an integer'),
  MAX_CONNECTIONS: between('MAX_CONNECTIONS', 'an integer'),
  MAX_CONNECTIONS_PER_ADDRESS: between('MAX_CONNECTIONS_PER_ADDRESS', 'an integer'),
  MAX_UPLOADS_IN_FLIGHT: between('MAX_UPLOADS_IN_FLIGHT', 'an integer'),
  UPGRADE_BURST: between('UPGRADE_BURST', 'an integer'),
  UPGRADES_PER_SECOND: between('UPGRADES_PER_SECOND', 'a number'),
  RESUME: `one of ${RESUME_MODES.join(', ')}`,
  TLS_CERT_FILE: 'the path of a PEM certificate, together with TLS_KEY_FILE, and not with TLS_SELF_SIGNED=true',
  TLS_KEY_FILE: 'the path of a PEM private key, together with TLS_CERT_FILE',
  TLS_SELF_SIGNED: '"true" or "false"',
  STRETCH: `one of ${STRETCH_MODES.join(', ')}`,
  REDIS_URL: 'a redis:// or rediss:// URL, e.g. redis://redis:6379',
  REDIS_NAMESPACE: '1 to 40 characters from a-z, 0-9 and -',
  METRICS_PUBLIC: '"true" or "false"',
  LOG_FORMAT: '"text" or "json"',
  WIFI_SSID: "the hotspot's name, 1 to 32 bytes (UTF-8)",
  WIFI_PASSWORD: "the hotspot's WPA password, 8 to 63 characters, together with WIFI_SSID (unset: an open network)",
  VIEWER_LANGUAGE: `one of ${VIEWER_LANGUAGE_CHOICES.join(', ')}`,
  HISTORY_BUDGET_MB: `${between('HISTORY_BUDGET_MB', 'an integer number of MB')}; 0 turns the history off`,
  SHARP_CONCURRENCY: `${between('SHARP_CONCURRENCY', 'an integer number of libvips threads per image')}; 0 leaves one per core`,
  UPSTREAM_URL: `${UPSTREAM_URL_RULE}, e.g. http://192.168.1.10:8000/s/club-a/`,
  UPSTREAM_TOKEN: `${UPSTREAM_TOKEN_RULE}, together with UPSTREAM_URL`,
  SCOPE_TOKENS: `id=token,id=token: ids matching ${SCOPE_ID_PATTERN.source}, each once, tokens of at least ${MIN_SCOPE_TOKEN_LENGTH} characters`,
  MAX_SCOPES: `${between('MAX_SCOPES', 'an integer number of scopes')}, main included`,
};

/** Every variable the service reads, for the code that hands the validated environment on. */
export const ENVIRONMENT_VARIABLE_NAMES = Object.keys(ALLOWED) as (keyof EnvironmentVariables)[];

/** Empty values (`PUBLIC_URL=` in a compose file) mean "unset". */
const blankToUndefined = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

const toInteger = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined({ value });
  return typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
};

const toNumber = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined({ value });
  return typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
};

const toBoolean = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined({ value });
  if (typeof v !== 'string') {
    return v;
  }
  const lower = v.trim().toLowerCase();
  return lower === 'true' ? true : lower === 'false' ? false : v;
};

function isDisplayedAddress(value: unknown): boolean {
  return value === 'auto' || (typeof value === 'string' && value.startsWith('ip:') && isIPv4(value.slice(3)));
}

/** A class-validator constraint from a plain predicate. */
function Satisfies(name: string, predicate: (value: unknown) => boolean): PropertyDecorator {
  return ValidateBy({ name, validator: { validate: predicate } });
}

/** 0 (any free port: tests, or several instances on one machine) or an unprivileged port. */
function isEnvPort(value: unknown): boolean {
  return value === 0 || (typeof value === 'number' && value >= RANGE.PORT.min && value <= RANGE.PORT.max);
}

/** A folder, or nothing yet (it is created at START); a read-only look, nothing is written. */
function isFolderPath(value: unknown): boolean {
  if (typeof value !== 'string') {
    return false;
  }
  try {
    return statSync(value).isDirectory();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}


function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') {
    return false;
  }
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/**
 * The service's environment, validated with class-validator. Every variable is read
 * here and nowhere else; the rest of the code receives typed `ImageServerOptions`.
 */
export class EnvironmentVariables {
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @Satisfies('port', isEnvPort)
  PORT?: number;

  @IsOptional()
  @Transform(blankToUndefined)
  @IsString()
  @Satisfies('folderPath', isFolderPath)
  WORK_FOLDER?: string;

  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  WEB_DEDICATED?: boolean;

  @ValidateIf((env: EnvironmentVariables) => env.WEB_DEDICATED === true)
  @Transform(blankToUndefined)
  @IsString()
  @Satisfies('folderPath', isFolderPath)
  WEB_FOLDER?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('displayedAddress', isDisplayedAddress)
  DISPLAYED_ADDRESS?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('httpUrl', isHttpUrl)
  PUBLIC_URL?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @IsString()
  @MinLength(16)
  CONTROL_TOKEN?: string;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_IMAGE_BYTES')
  MAX_IMAGE_BYTES?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('JPEG_QUALITY')
  JPEG_QUALITY?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_IMAGE_SIZE')
  MAX_IMAGE_SIZE?: number;

  /** Largest image decoded (width × height); checked from the header, before any pixel. */
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_INPUT_PIXELS')
  MAX_INPUT_PIXELS?: number;

  @IsOptional()
  @Transform(blankToUndefined)
  @IsString()
  WATCH_PATH?: string;

  @IsOptional()
  @Transform(toNumber)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @InRange('WATCH_EXPOSURE')
  WATCH_EXPOSURE?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('WATCH_SETTLE_MS')
  WATCH_SETTLE_MS?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('WATCH_POLL_MS')
  WATCH_POLL_MS?: number;

  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  @ValidateBy({
    name: 'oneImageSource',
    validator: { validate: (value: unknown, args) => !(value === true && (args?.object as EnvironmentVariables).WATCH_PATH !== undefined) },
  })
  DEMO?: boolean;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('DEMO_INTERVAL_MS')
  DEMO_INTERVAL_MS?: number;

  /** How many versions (`/v/<version>/`) stay on disk. */
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('KEEP_VERSIONS')
  KEEP_VERSIONS?: number;
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_VIEWERS')
  MAX_VIEWERS?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_VIEWERS_PER_ADDRESS')
  MAX_VIEWERS_PER_ADDRESS?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_CONNECTIONS')
  MAX_CONNECTIONS?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_CONNECTIONS_PER_ADDRESS')
  MAX_CONNECTIONS_PER_ADDRESS?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_UPLOADS_IN_FLIGHT')
  MAX_UPLOADS_IN_FLIGHT?: number;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('UPGRADE_BURST')
  UPGRADE_BURST?: number;

  @IsOptional()
  @Transform(toNumber)
  @IsNumber()
  @InRange('UPGRADES_PER_SECOND')
  UPGRADES_PER_SECOND?: number;

  @IsOptional()
  @Transform(blankToUndefined)
  @IsIn(RESUME_MODES)
  RESUME?: ResumeMode;
  // Both or neither; a file that cannot be read or a pair that does not match is found at startup (tls.ts).
  @ValidateIf((env: EnvironmentVariables) => env.TLS_CERT_FILE !== undefined || env.TLS_KEY_FILE !== undefined)
  @Transform(blankToUndefined)
  @IsString()
  @ValidateBy({
    name: 'notWithSelfSigned',
    validator: { validate: (_value: unknown, args) => (args?.object as EnvironmentVariables).TLS_SELF_SIGNED !== true },
  })
  TLS_CERT_FILE?: string;

  @ValidateIf((env: EnvironmentVariables) => env.TLS_CERT_FILE !== undefined || env.TLS_KEY_FILE !== undefined)
  @Transform(blankToUndefined)
  @IsString()
  TLS_KEY_FILE?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('redisUrl', isRedisUrl)
  REDIS_URL?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('redisNamespace', (v) => typeof v === 'string' && REDIS_NAMESPACE_PATTERN.test(v))
  REDIS_NAMESPACE?: string;

  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  TLS_SELF_SIGNED?: boolean;

  @IsOptional()
  @Transform(blankToUndefined)
  @IsIn(STRETCH_MODES)
  STRETCH?: StretchMode;

  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  METRICS_PUBLIC?: boolean;

  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('logFormat', (v) => v === 'text' || v === 'json')
  LOG_FORMAT?: 'text' | 'json';

  // Not trimmed: spaces are part of a network's name.
  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('wifiSsid', isWifiSsid)
  WIFI_SSID?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('wifiPassword', isWifiPassword)
  @ValidateBy({
    name: 'withSsid',
    validator: { validate: (_value: unknown, args) => (args?.object as EnvironmentVariables).WIFI_SSID !== undefined },
  })
  WIFI_PASSWORD?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @IsIn(VIEWER_LANGUAGE_CHOICES)
  VIEWER_LANGUAGE?: ViewerLanguage;
  // --- history (issue 21) ---
  /** Disk the night's history may use, in MB; 0: no history. */
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('HISTORY_BUDGET_MB')
  HISTORY_BUDGET_MB?: number;
  // --- small computers (issue 23) ---
  /** libvips threads per image; 0: one per core. */
  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('SHARP_CONCURRENCY')
  SHARP_CONCURRENCY?: number;
  // --- relay (issue 20) ---
  /** The hub's scope this service also publishes into; a missing trailing slash is added. */
  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('upstreamUrl', (v) => upstreamUrl(v) !== undefined)
  UPSTREAM_URL?: string;

  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('upstreamToken', isUpstreamToken)
  @ValidateBy({
    name: 'withUpstreamUrl',
    validator: { validate: (_value: unknown, args) => (args?.object as EnvironmentVariables).UPSTREAM_URL !== undefined },
  })
  UPSTREAM_TOKEN?: string;
  // --- scopes (issue 20) ---
  /** `id=token,id=token`: tokens that publish into and control their own scope only. */
  @IsOptional()
  @Transform(blankToUndefined)
  @Satisfies('scopeTokens', (v) => typeof v === 'string' && parseScopeTokens(v).problems.length === 0)
  SCOPE_TOKENS?: string;

  @IsOptional()
  @Transform(toInteger)
  @IsInt()
  @InRange('MAX_SCOPES')
  MAX_SCOPES?: number;
}

/** Variables whose value is shown by its length only. */
const SECRETS = new Set<string>(['CONTROL_TOKEN', 'WIFI_PASSWORD', 'UPSTREAM_TOKEN']);

function describe(name: string, raw: unknown): string {
  const allowed = ALLOWED[name as keyof EnvironmentVariables] ?? 'a valid value';
  if (name === 'SCOPE_TOKENS' && typeof raw === 'string') {
    // Ids and lengths only: the tokens are secrets.
    return `SCOPE_TOKENS is invalid (${parseScopeTokens(raw).problems.join('; ')}): expected ${allowed}`;
  }
  if (SECRETS.has(name) && typeof raw === 'string') {
    // A secret is never printed, not even a wrong one: its length is enough to see the mistake.
    return `${name} (${raw.length} characters) is invalid: expected ${allowed}`;
  }
  // A URL's user:password@ is a secret too.
  const shown = typeof raw === 'string' ? raw.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, '$1***@') : raw;
  const given = shown === undefined ? '(unset)' : JSON.stringify(shown);
  return `${name}=${given} is invalid: expected ${allowed}`;
}

/**
 * The `validate` function given to `ConfigModule.forRoot`: checks every variable and
 * throws a {@link ConfigValidationError} with one line per bad one, naming the variable,
 * the value given and what is allowed.
 */
export function validateEnv(config: Record<string, unknown>): EnvironmentVariables {
  const env = plainToInstance(EnvironmentVariables, config, { excludeExtraneousValues: false });
  const errors: ValidationError[] = validateSync(env, { skipMissingProperties: false });
  if (errors.length > 0) {
    throw new ConfigValidationError(errors.map((e) => describe(e.property, config[e.property])));
  }
  return env;
}
