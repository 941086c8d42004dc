import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigValidationError, ENVIRONMENT_VARIABLE_NAMES, validateEnv } from './env.validation.js';
import { resolveImageServerOptions } from './image-server-options.js';
import { optionsFromEnvironment } from './environment-options.js';

function errorLines(env: Record<string, string>): string[] {
  try {
    validateEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigValidationError);
    return (err as ConfigValidationError).lines;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('image conversion and source settings', () => {
  it('defaults: quality 90, 4096 px, no watch, settle 500 ms, scan every second, no exposure, no demo, a frame every 3 s', () => {
    expect(resolveImageServerOptions(optionsFromEnvironment(validateEnv({})))).toMatchObject({
      jpegQuality: 90,
      maxImageSize: 4096,
      watchPath: undefined,
      watchSettleMs: 500,
      watchPollIntervalMs: 1000,
      watchExposureSeconds: 0,
      demo: false,
      demoIntervalMs: 3000,
    });
  });

  it('maps every variable onto the options, the watch path made absolute', () => {
    const env = validateEnv({
      JPEG_QUALITY: '75',
      MAX_IMAGE_SIZE: '2048',
      WATCH_PATH: 'stacker/out',
      WATCH_EXPOSURE: '12.5',
      WATCH_SETTLE_MS: '800',
      WATCH_POLL_MS: '2000',
      DEMO_INTERVAL_MS: '5000',
    });
    expect(resolveImageServerOptions(optionsFromEnvironment(env))).toMatchObject({
      jpegQuality: 75,
      maxImageSize: 2048,
      watchPath: resolve('stacker/out'),
      watchExposureSeconds: 12.5,
      watchSettleMs: 800,
      watchPollIntervalMs: 2000,
      demo: false,
      demoIntervalMs: 5000,
    });
    expect(optionsFromEnvironment(validateEnv({ DEMO: 'true' })).demo).toBe(true);
  });

  it.each([
    ['JPEG_QUALITY', '0'],
    ['JPEG_QUALITY', '101'],
    ['JPEG_QUALITY', 'high'],
    ['MAX_IMAGE_SIZE', '10'],
    ['MAX_IMAGE_SIZE', '4096px'],
    ['WATCH_EXPOSURE', '-1'],
    ['WATCH_EXPOSURE', '30s'],
    ['WATCH_SETTLE_MS', '0'],
    ['WATCH_POLL_MS', 'often'],
    ['DEMO', 'yes'],
    ['DEMO_INTERVAL_MS', '10'],
  ])('refuses %s=%s with one line naming the variable, the value and what is allowed', (name, value) => {
    const lines = errorLines({ [name]: value });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${name}="${value}" is invalid: expected `);
  });

  it('refuses DEMO=true together with WATCH_PATH: one image source at a time', () => {
    const lines = errorLines({ DEMO: 'true', WATCH_PATH: '/data/out' });
    expect(lines).toEqual([expect.stringMatching(/^DEMO="true" is invalid: .*WATCH_PATH/)]);
    expect(() => resolveImageServerOptions({ demo: true, watchPath: '/data/out' })).toThrow(/demo.*watchPath/);
  });

  it('takes STRETCH as auto, always or never (default auto), and names the allowed values otherwise', () => {
    expect(resolveImageServerOptions().stretch).toBe('auto');
    expect(validateEnv({ STRETCH: 'never' }).STRETCH).toBe('never');
    expect(errorLines({ STRETCH: 'on' })).toEqual(['STRETCH="on" is invalid: expected one of auto, always, never']);
    expect(() => resolveImageServerOptions({ stretch: 'on' as 'auto' })).toThrow(/stretch="on" is invalid: expected one of auto, always, never/);
  });

  it('lists the new variables among those the service reads', () => {
    for (const name of ['JPEG_QUALITY', 'MAX_IMAGE_SIZE', 'WATCH_PATH', 'WATCH_EXPOSURE', 'WATCH_SETTLE_MS', 'WATCH_POLL_MS', 'DEMO', 'DEMO_INTERVAL_MS']) {
      expect(ENVIRONMENT_VARIABLE_NAMES).toContain(name);
    }
  });
});
