import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigValidationError, validateEnv } from './env.validation.js';
import { optionsFromEnvironment } from './environment-options.js';
import { resolveImageServerOptions } from './image-server-options.js';

function errorLines(env: Record<string, string>): string[] {
  try {
    validateEnv(env);
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      return err.lines;
    }
    throw err;
  }
  return [];
}

describe('validateEnv', () => {
  it('accepts an empty environment: every setting has a default', () => {
    const options = resolveImageServerOptions(optionsFromEnvironment(validateEnv({})));
    expect(options).toMatchObject({ port: 8000, displayedAddress: { mode: 'auto' }, publicUrl: undefined, controlToken: undefined });
    expect(options.workFolder).toMatch(/\/work$/);
    expect(options.webFolder).toBe(options.workFolder);
    expect(options.maxInputPixels).toBe(200_000_000);
  });

  it('maps valid settings onto typed options', () => {
    const env = validateEnv({
      PORT: '8080',
      WORK_FOLDER: '/tmp/w',
      WEB_DEDICATED: 'true',
      WEB_FOLDER: '/tmp/web',
      DISPLAYED_ADDRESS: 'ip:192.168.1.20',
      PUBLIC_URL: 'https://sky.example.org/live',
      CONTROL_TOKEN: '0123456789abcdef',
      MAX_IMAGE_BYTES: '1048576',
      KEEP_VERSIONS: '6',
      MAX_INPUT_PIXELS: '50000000',
      UNRELATED: 'ignored',
    });
    expect(resolveImageServerOptions(optionsFromEnvironment(env))).toMatchObject({
      port: 8080,
      workFolder: '/tmp/w',
      webFolder: '/tmp/web',
      displayedAddress: { mode: 'ip', address: '192.168.1.20' },
      publicUrl: 'https://sky.example.org/live',
      controlToken: '0123456789abcdef',
      maxImageBytes: 1_048_576,
      keepVersions: 6,
      maxInputPixels: 50_000_000,
    });
  });

  it('ignores WEB_FOLDER unless WEB_DEDICATED=true, and treats empty values as unset', () => {
    const env = validateEnv({ WORK_FOLDER: '/tmp/w', WEB_DEDICATED: 'false', WEB_FOLDER: '/tmp/web', PUBLIC_URL: '', CONTROL_TOKEN: ' ' });
    const options = resolveImageServerOptions(optionsFromEnvironment(env));
    expect(options.webFolder).toBe('/tmp/w');
    expect(options.publicUrl).toBeUndefined();
    expect(options.controlToken).toBeUndefined();
  });

  it.each([
    ['PORT', '80'],
    ['PORT', '65536'],
    ['PORT', 'eighty'],
    ['PORT', '8000.5'],
    ['WEB_DEDICATED', 'yes'],
    ['DISPLAYED_ADDRESS', 'wlan0'],
    ['DISPLAYED_ADDRESS', 'ip:999.1.1.1'],
    ['DISPLAYED_ADDRESS', 'ip:'],
    ['PUBLIC_URL', 'sky.example.org'],
    ['PUBLIC_URL', 'ftp://sky.example.org'],
    ['MAX_IMAGE_BYTES', '12'],
    ['KEEP_VERSIONS', '2'],
    ['KEEP_VERSIONS', '9'],
    ['MAX_INPUT_PIXELS', '1000'],
    ['MAX_INPUT_PIXELS', '2000000000'],
    ['MAX_INPUT_PIXELS', '1e8'],
  ])('%s=%s is refused with one line naming the variable, the value and what is allowed', (name, value) => {
    const lines = errorLines({ [name]: value });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
    expect(lines[0]).toContain(JSON.stringify(value));
    expect(lines[0]).toMatch(/expected /);
  });

  it('a too-short CONTROL_TOKEN is shown by its length, never its value', () => {
    expect(errorLines({ CONTROL_TOKEN: 'short' })).toEqual(['CONTROL_TOKEN (5 characters) is invalid: expected a string of at least 16 characters']);
  });

  it('a WORK_FOLDER or WEB_FOLDER that is a file is refused; a missing folder is fine (created at START)', () => {
    const file = fileURLToPath(import.meta.url);
    expect(errorLines({ WORK_FOLDER: file })).toEqual([expect.stringMatching(/^WORK_FOLDER=".*" is invalid: expected a folder path/)]);
    expect(errorLines({ WEB_DEDICATED: 'true', WEB_FOLDER: file })).toEqual([expect.stringMatching(/^WEB_FOLDER=".*" is invalid/)]);
    expect(errorLines({ WORK_FOLDER: '/tmp/stackcast-does-not-exist-yet/work' })).toEqual([]);
  });

  it('WEB_DEDICATED=true without WEB_FOLDER is refused', () => {
    const lines = errorLines({ WEB_DEDICATED: 'true' });
    expect(lines).toEqual([expect.stringMatching(/^WEB_FOLDER=\(unset\) is invalid: expected a folder path, not a file \(required when WEB_DEDICATED=true\)$/)]);
  });

  it('reports every bad setting at once, one line each', () => {
    const lines = errorLines({ PORT: '1', CONTROL_TOKEN: 'x', PUBLIC_URL: 'nope' });
    expect(lines.map((l) => l.split(/[= ]/)[0]).sort()).toEqual(['CONTROL_TOKEN', 'PORT', 'PUBLIC_URL']);
  });
});

describe('resolveImageServerOptions (options given in code by an embedding app)', () => {
  it('refuses out-of-range numbers with one message naming each option', () => {
    expect(() => resolveImageServerOptions({ jpegQuality: 0, port: 70_000 })).toThrow(
      /port=70000 is invalid: expected an integer from 0 to 65535; jpegQuality=0 is invalid: expected an integer from 1 to 100/,
    );
    expect(() => resolveImageServerOptions({ maxImageSize: 10.5 })).toThrow(/maxImageSize=10.5 is invalid/);
    expect(() => resolveImageServerOptions({ disconnectGraceMs: Number.NaN })).toThrow(/disconnectGraceMs=NaN/);
    expect(() => resolveImageServerOptions({ tileSize: 32, keepVersions: 2 })).toThrow(
      /tileSize=32 is invalid: expected an integer from 64 to 2048; keepVersions=2 is invalid: expected an integer from 3 to 8/,
    );
    expect(() => resolveImageServerOptions({ tileFormat: 'png' as 'jpeg' })).toThrow(/tileFormat="png" is invalid: expected "jpeg" or "webp"/);
  });

  it('accepts port 0 (any free port) and the defaults', () => {
    expect(resolveImageServerOptions({ port: 0 }).port).toBe(0);
    expect(resolveImageServerOptions().jpegQuality).toBe(90);
  });
});

describe('scale-out and operations settings', () => {
  it('maps REDIS_URL, REDIS_NAMESPACE and METRICS_PUBLIC; the namespace defaults to stackcast', () => {
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({})))).toMatchObject({ redisUrl: undefined, redisNamespace: 'stackcast', metricsPublic: false });
    const env = validateEnv({ REDIS_URL: 'rediss://redis.example.org:6380/1', REDIS_NAMESPACE: 'm42-night', METRICS_PUBLIC: 'true', LOG_FORMAT: 'json' });
    expect(env.LOG_FORMAT).toBe('json');
    expect(resolveImageServerOptions(optionsFromEnvironment(env))).toMatchObject({
      redisUrl: 'rediss://redis.example.org:6380/1',
      redisNamespace: 'm42-night',
      metricsPublic: true,
    });
  });

  it.each([
    ['REDIS_URL', 'http://redis:6379'],
    ['REDIS_URL', 'redis-host:6379'],
    ['REDIS_NAMESPACE', 'Stackcast'],
    ['REDIS_NAMESPACE', 'a'.repeat(41)],
    ['REDIS_NAMESPACE', 'with:colon'],
    ['METRICS_PUBLIC', 'yes'],
    ['LOG_FORMAT', 'xml'],
  ])('%s=%s is refused with one line naming the variable and what is allowed', (name, value) => {
    const lines = errorLines({ [name]: value });
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^${name}=.* is invalid: expected `))]);
  });

  it('a bad REDIS_URL never shows its password', () => {
    const lines = errorLines({ REDIS_URL: 'http://admin:hunter2-secret@redis:6379' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('REDIS_URL');
    expect(lines[0]).not.toContain('hunter2-secret');
    expect(lines[0]).not.toContain('admin');
  });

  it('options given in code: a bad namespace or URL is refused', () => {
    expect(() => resolveImageServerOptions({ redisNamespace: 'UPPER' })).toThrow(/redisNamespace="UPPER" is invalid/);
    expect(() => resolveImageServerOptions({ redisUrl: 'http://x:y@h' })).toThrow(/redisUrl is invalid: expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => resolveImageServerOptions({ redisUrl: 'http://x:y@h' })).not.toThrow(/x:y/);
  });
});

describe('every visitor: WIFI_SSID, WIFI_PASSWORD, VIEWER_LANGUAGE', () => {
  it('maps them onto the options; VIEWER_LANGUAGE defaults to auto, no password is an open network', () => {
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({})))).toMatchObject({ wifiSsid: undefined, wifiPassword: undefined, viewerLanguage: 'auto' });
    const env = validateEnv({ WIFI_SSID: ' Star;Party ', WIFI_PASSWORD: 'dark-sky-42', VIEWER_LANGUAGE: 'it' });
    expect(resolveImageServerOptions(optionsFromEnvironment(env))).toMatchObject({ wifiSsid: ' Star;Party ', wifiPassword: 'dark-sky-42', viewerLanguage: 'it' });
  });

  it.each([
    ['WIFI_SSID', 'x'.repeat(33), /1 to 32 bytes/],
    // 17 characters, 34 bytes in UTF-8.
    ['WIFI_SSID', 'ééééééééééé'.repeat(3).slice(0, 17), /1 to 32 bytes/],
    ['VIEWER_LANGUAGE', 'pt', /one of auto, en, fr, de, es, it/],
  ])('%s=%s is refused with one line naming the variable and what is allowed', (name, value, allowed) => {
    expect(errorLines({ [name]: value })).toEqual([expect.stringMatching(new RegExp(`^${name}=.* is invalid: expected .*${allowed.source}`))]);
  });

  it.each(['seven77', 'x'.repeat(64)])('a bad WIFI_PASSWORD is shown by its length, never its value', (password) => {
    const lines = errorLines({ WIFI_SSID: 'Messier 42', WIFI_PASSWORD: password });
    expect(lines).toEqual([`WIFI_PASSWORD (${password.length} characters) is invalid: expected the hotspot's WPA password, 8 to 63 characters, together with WIFI_SSID (unset: an open network)`]);
  });

  it('WIFI_PASSWORD without WIFI_SSID is refused, without its value', () => {
    const lines = errorLines({ WIFI_PASSWORD: 'dark-sky-42' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^WIFI_PASSWORD \(11 characters\) is invalid: .*together with WIFI_SSID/);
  });

  it('options given in code are checked too, never printing the password', () => {
    expect(() => resolveImageServerOptions({ wifiSsid: 'M42', wifiPassword: 'short' })).toThrow(/wifiPassword \(5 characters\) is invalid: expected 8 to 63 characters/);
    expect(() => resolveImageServerOptions({ wifiSsid: 'M42', wifiPassword: 'short' })).not.toThrow(/short/);
    expect(() => resolveImageServerOptions({ wifiSsid: '' })).toThrow(/wifiSsid="" is invalid: expected 1 to 32 bytes/);
    expect(() => resolveImageServerOptions({ viewerLanguage: 'pt' as 'en' })).toThrow(/viewerLanguage="pt" is invalid: expected one of auto, en, fr, de, es, it/);
  });
});

describe('HISTORY_BUDGET_MB (issue 21)', () => {
  it('defaults to 512, takes 0 (off) and integers up to 100000', () => {
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({}))).historyBudgetMb).toBe(512);
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({ HISTORY_BUDGET_MB: '0' }))).historyBudgetMb).toBe(0);
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({ HISTORY_BUDGET_MB: '100000' }))).historyBudgetMb).toBe(100_000);
  });

  it.each(['-1', '100001', '1.5', 'lots'])('HISTORY_BUDGET_MB=%s is refused with one line saying what is allowed', (value) => {
    expect(errorLines({ HISTORY_BUDGET_MB: value })).toEqual([
      `HISTORY_BUDGET_MB="${value}" is invalid: expected an integer number of MB from 0 to 100000; 0 turns the history off`,
    ]);
  });
});

describe('SHARP_CONCURRENCY (issue 23)', () => {
  it('takes 0 to 256 threads, default 0 (libvips decides)', () => {
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({}))).sharpConcurrency).toBe(0);
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({ SHARP_CONCURRENCY: '1' }))).sharpConcurrency).toBe(1);
  });

  it.each(['-1', '257', '1.5', 'one'])('SHARP_CONCURRENCY=%s is refused with one line saying what is allowed', (value) => {
    expect(errorLines({ SHARP_CONCURRENCY: value })).toEqual([
      `SHARP_CONCURRENCY="${value}" is invalid: expected an integer number of libvips threads per image from 0 to 256; 0 leaves one per core`,
    ]);
  });
});

describe('the relay: UPSTREAM_URL, UPSTREAM_TOKEN', () => {
  const token = 'club-a-secret-0123456789';

  it('maps a scope URL onto upstreamUrl, adding the trailing slash', () => {
    const env = validateEnv({ UPSTREAM_URL: 'http://192.168.1.10:8000/s/club-a', UPSTREAM_TOKEN: token });
    const options = resolveImageServerOptions(optionsFromEnvironment(env));
    expect(options.upstreamUrl).toBe('http://192.168.1.10:8000/s/club-a/');
    expect(options.upstreamToken).toBe(token);
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({ UPSTREAM_URL: 'https://hub.example.org/s/m42/' }))).upstreamUrl).toBe(
      'https://hub.example.org/s/m42/',
    );
  });

  it.each([
    'ftp://hub/s/club-a/',
    'http://hub:8000/',
    'http://hub:8000/club-a/',
    'http://hub:8000/s/Club-A/',
    'http://hub:8000/s/-a/',
    `http://hub:8000/s/${'a'.repeat(33)}/`,
    'http://hub:8000/s/club-a/api/image',
    'http://hub:8000/s/club-a/?x=1',
    'hub:8000/s/club-a/',
  ])('refuses UPSTREAM_URL=%s, naming the variable and what is allowed', (url) => {
    const lines = errorLines({ UPSTREAM_URL: url });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`UPSTREAM_URL=${JSON.stringify(url)} is invalid: expected the URL of a scope on the hub, http(s)://host[:port]/s/<id>/`);
  });

  it('never prints credentials in a URL it refuses', () => {
    const lines = errorLines({ UPSTREAM_URL: `http://user:${token}@hub:8000/s/club-a/` });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^UPSTREAM_URL="http:\/\/\*\*\*@hub:8000\/s\/club-a\/" is invalid: .*no user:password@/);
    expect(lines[0]).not.toContain(token);
  });

  it.each(['short', 'has a space in it 0123', 'x'.repeat(1025)])('a bad UPSTREAM_TOKEN is shown by its length, never its value', (bad) => {
    const lines = errorLines({ UPSTREAM_URL: 'http://hub:8000/s/club-a/', UPSTREAM_TOKEN: bad });
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^UPSTREAM_TOKEN \\(${bad.length} characters\\) is invalid: expected a token of 16 to 1024 printable characters`))]);
    expect(lines[0]).not.toContain(bad);
  });

  it('UPSTREAM_TOKEN without UPSTREAM_URL is refused, without its value', () => {
    const lines = errorLines({ UPSTREAM_TOKEN: token });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^UPSTREAM_TOKEN \(24 characters\) is invalid: .*together with UPSTREAM_URL/);
    expect(lines[0]).not.toContain(token);
  });

  it('options given in code are checked the same way, never printing the token', () => {
    expect(() => resolveImageServerOptions({ upstreamUrl: 'http://hub/s/club-a/x' })).toThrow(/upstreamUrl="http:\/\/hub\/s\/club-a\/x" is invalid/);
    expect(() => resolveImageServerOptions({ upstreamUrl: 'http://hub/s/a/', upstreamToken: 'tiny' })).toThrow(/upstreamToken \(4 characters\) is invalid/);
    expect(() => resolveImageServerOptions({ upstreamToken: token })).toThrow(/upstreamToken is set without upstreamUrl/);
    expect(resolveImageServerOptions({ upstreamUrl: 'http://hub/s/a' }).upstreamUrl).toBe('http://hub/s/a/');
  });
});
