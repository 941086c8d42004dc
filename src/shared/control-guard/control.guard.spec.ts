import { ForbiddenException, Logger, UnauthorizedException, type ExecutionContext, type LoggerService } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { ControlGuard, isLoopback } from './control.guard.js';

/** The parts of an HTTP request the guard reads. */
function call(remoteAddress: string, headers: Record<string, string>): ExecutionContext {
  const req = { socket: { remoteAddress }, headers: { host: '127.0.0.1:8000', ...headers } };
  return { switchToHttp: () => ({ getRequest: () => req }) } as unknown as ExecutionContext;
}

const open = new ControlGuard(resolveImageServerOptions({}));
const TOKEN = '0123456789abcdef-token';
const withToken = new ControlGuard(resolveImageServerOptions({ controlToken: TOKEN }));

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['192.168.1.20', false],
    ['::ffff:192.168.1.20', false],
    ['10.0.0.1', false],
    ['fe80::1', false],
    ['', false],
    [undefined, false],
  ])('%s -> %s', (address, expected) => {
    expect(isLoopback(address)).toBe(expected);
  });
});

describe('ControlGuard without a token', () => {
  it.each([
    ['curl on this machine', '127.0.0.1', {}],
    ['localhost with a port', '::1', { host: 'localhost:8000' }],
    ['IPv6 loopback host', '::1', { host: '[::1]:8000' }],
    ['same-origin page (the viewer itself)', '127.0.0.1', { origin: 'http://127.0.0.1:8000', 'sec-fetch-site': 'same-origin' }],
  ])('accepts %s', (_what, address, headers) => {
    expect(open.canActivate(call(address, headers))).toBe(true);
  });

  it.each([
    ['a phone on the LAN', '192.168.1.33', {}],
    ['an IPv4-mapped LAN peer', '::ffff:192.168.1.33', {}],
    ['another web site (CSRF)', '127.0.0.1', { origin: 'http://evil.example' }],
    ['another web site, Fetch metadata only', '127.0.0.1', { 'sec-fetch-site': 'cross-site' }],
    ['an opaque origin (sandboxed page, file://)', '127.0.0.1', { origin: 'null' }],
    ['DNS rebinding (foreign Host)', '127.0.0.1', { host: 'attacker.example:8000' }],
    ['a local reverse proxy (X-Forwarded-For)', '127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }],
    ['a local reverse proxy (Forwarded)', '127.0.0.1', { forwarded: 'for=203.0.113.9' }],
    ['a local reverse proxy (X-Real-IP)', '127.0.0.1', { 'x-real-ip': '203.0.113.9' }],
  ])('refuses %s with 403', (_what, address, headers) => {
    expect(() => open.canActivate(call(address, headers))).toThrow(ForbiddenException);
  });
});

describe('ControlGuard with a token', () => {
  it('accepts the right Bearer token from anywhere, even through a proxy', () => {
    expect(withToken.canActivate(call('192.168.1.33', { authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '203.0.113.9' }))).toBe(true);
  });

  it.each([
    ['no header', {}],
    ['a wrong token', { authorization: 'Bearer wrong-token-wrong-token' }],
    ['the token without Bearer', { authorization: TOKEN }],
    ['a prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
  ])('refuses %s with 401, even from loopback', (_what, headers) => {
    expect(() => withToken.canActivate(call('127.0.0.1', headers))).toThrow(UnauthorizedException);
  });
});

describe('ControlGuard refusals say the rule and are logged', () => {
  const warnings: string[] = [];
  beforeEach(() => {
    warnings.length = 0;
    const record = (message: unknown): void => {
      warnings.push(String(message));
    };
    Logger.overrideLogger({ log: () => undefined, error: record, warn: record } satisfies LoggerService);
  });
  afterEach(() => {
    Logger.overrideLogger(true);
  });

  /** The 403's message, from a guard of its own (each refusal log starts empty). */
  function refusal(address: string, headers: Record<string, string>): string {
    try {
      new ControlGuard(resolveImageServerOptions({})).canActivate(call(address, headers));
    } catch (err) {
      expect(err).toBeInstanceOf(ForbiddenException);
      return (err as ForbiddenException).message;
    }
    throw new Error('not refused');
  }

  it('a script on this machine that used the printed LAN URL is told to use 127.0.0.1 or the token', () => {
    const message = refusal('192.0.2.2', { host: '192.0.2.2:8000' });
    expect(message).toContain('loopback address only');
    expect(message).toContain('http://127.0.0.1:8000');
    expect(message).toContain('Authorization: Bearer <CONTROL_TOKEN>');
    expect(message).not.toContain('from this machine only');
    expect(warnings).toEqual([expect.stringMatching(/^refused control call from 192\.0\.2\.2: .*loopback address only/)]);
  });

  it('a loopback call addressed to another name says the same rule and why', () => {
    const message = refusal('127.0.0.1', { host: 'stars.local:8123' });
    expect(message).toContain('http://127.0.0.1:8123');
    expect(message).toContain('addressed to "stars.local:8123"');
    expect(message).toContain('Authorization: Bearer <CONTROL_TOKEN>');
    expect(warnings).toHaveLength(1);
  });

  it('repeated refusals from one address are summed up, not logged one line each', () => {
    const guard = new ControlGuard(resolveImageServerOptions({}));
    for (let i = 0; i < 50; i++) {
      expect(() => guard.canActivate(call('192.0.2.7', {}))).toThrow(ForbiddenException);
    }
    expect(warnings).toHaveLength(1);
  });

  it('isAuthorized (the /status check) logs nothing', () => {
    expect(new ControlGuard(resolveImageServerOptions({})).isAuthorized(call('192.0.2.7', {}).switchToHttp().getRequest())).toBe(false);
    expect(warnings).toEqual([]);
  });
});
