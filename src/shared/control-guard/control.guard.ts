import {
  ForbiddenException,
  HttpException,
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { IMAGE_SERVER_OPTIONS, MAIN_SCOPE, type ImageServerOptions } from '../../config/image-server-options.js';
import { RefusalLog } from '../http-limits/refusal-log.js';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) {
    return false;
  }
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) {
    return v4.startsWith('127.');
  }
  return address === '::1';
}

/** Host names a loopback-only control call may be addressed to. */
const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

/**
 * Why a loopback call without a token is still refused, or undefined when it is fine.
 * The peer being loopback is not enough: a web page open in the astronomer's browser can
 * POST to 127.0.0.1 (a "simple" cross-site request), a rebinding DNS name can point at
 * it, and a reverse proxy on the same machine makes every visitor look local.
 */
export function loopbackRefusal(headers: Request['headers']): string | undefined {
  if (headers.forwarded !== undefined || headers['x-forwarded-for'] !== undefined || headers['x-real-ip'] !== undefined) {
    return 'the call came through a proxy';
  }
  const host = headers.host ?? '';
  if (!LOOPBACK_HOST.test(host)) {
    return `the call is addressed to "${host}", not to localhost`;
  }
  if (headers['sec-fetch-site'] === 'cross-site' || headers['sec-fetch-site'] === 'same-site') {
    return 'the call came from another web site';
  }
  const origin = headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      return 'the call has an unreadable Origin';
    }
    if (originHost.toLowerCase() !== host.toLowerCase()) {
      return `the call came from the web page ${origin}`;
    }
  } else if (origin === 'null') {
    return 'the call came from an opaque origin';
  }
  return undefined;
}

/** Hashing first gives both sides the same length, which timingSafeEqual requires. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** How to pass the guard, for the 403's message: the loopback address on the port the call used, or the token. */
function howToPass(req: Pick<Request, 'headers' | 'socket'>, fallbackPort: number): string {
  const port = req.socket.localPort ?? /:(\d+)$/.exec(req.headers.host ?? '')?.[1] ?? fallbackPort;
  return `use http://127.0.0.1:${port} (or localhost) on this machine, or set CONTROL_TOKEN and send "Authorization: Bearer <CONTROL_TOKEN>"`;
}

/**
 * Control routes: `Authorization: Bearer <CONTROL_TOKEN>` when a token is configured
 * (401 otherwise), else only a loopback peer addressing localhost directly, not through a
 * proxy nor from a web page of another origin (403 otherwise). Refusals are logged, a
 * few lines at most per address.
 */
@Injectable()
export class ControlGuard implements CanActivate {
  private readonly refusals = new RefusalLog(new Logger('ControlGuard'));

  constructor(@Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    try {
      this.authorize(req);
    } catch (err) {
      if (err instanceof HttpException) {
        this.refusals.refused('control call', req.socket.remoteAddress ?? '?', err.message);
      }
      throw err;
    }
    return true;
  }

  /** Throws the 401 or 403 a control call gets, or returns when it may go ahead. */
  authorize(req: Pick<Request, 'headers' | 'socket'>): void {
    const token = this.options.controlToken;
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1].trim();
    if (bearer !== undefined && (token === undefined || !sameSecret(bearer, token)) && this.scopeTokenAccepted(bearer)) {
      return;
    }
    if (token !== undefined) {
      if (bearer === undefined || !sameSecret(bearer, token)) {
        throw new UnauthorizedException('a valid "Authorization: Bearer <CONTROL_TOKEN>" header is required');
      }
      return;
    }
    // The peer address is what counts: the machine's own LAN address is not loopback.
    if (!isLoopback(req.socket.remoteAddress)) {
      throw new ForbiddenException(
        `without CONTROL_TOKEN, control calls are accepted from a loopback address only, and this one came from ${req.socket.remoteAddress ?? 'an unknown address'}: ${howToPass(req, this.options.port)}`,
      );
    }
    const refusal = loopbackRefusal(req.headers);
    if (refusal !== undefined) {
      throw new ForbiddenException(
        `without CONTROL_TOKEN, control calls are accepted from a loopback address only, addressed to it directly (not through a proxy nor from a web page), but ${refusal}: ${howToPass(req, this.options.port)}`,
      );
    }
  }

  /**
   * SCOPE_TOKENS: true for this app's scope's token; a token of another scope is a 403
   * (it is valid, for that scope only); false for anything else.
   */
  private scopeTokenAccepted(bearer: string): boolean {
    const own = this.options.scopeId ?? MAIN_SCOPE;
    // Every entry is compared, so the time taken does not tell which one matched.
    let matched: string | undefined;
    for (const [id, scopeToken] of Object.entries(this.options.scopeTokens)) {
      if (sameSecret(bearer, scopeToken)) {
        matched = id;
      }
    }
    if (matched === undefined) {
      return false;
    }
    if (matched === own) {
      return true;
    }
    throw new ForbiddenException(
      `this is the token of scope "${matched}": it may publish into and control /s/${matched}/ only, not ${own === MAIN_SCOPE ? 'the main scope (the root and /s/main/)' : `/s/${own}/`}; CONTROL_TOKEN may do both`,
    );
  }

  /** True when `req` passes {@link authorize} (for answers that differ by caller, such as /status). */
  isAuthorized(req: Pick<Request, 'headers' | 'socket'>): boolean {
    try {
      this.authorize(req);
      return true;
    } catch {
      return false;
    }
  }
}
