import { ForbiddenException, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
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
