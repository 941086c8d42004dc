import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';

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

/** Hashing first gives both sides the same length, which timingSafeEqual requires. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Control routes: `Authorization: Bearer <CONTROL_TOKEN>` when a token is configured
 * (401 otherwise), else only a loopback peer (403 otherwise).
 */
@Injectable()
export class ControlGuard implements CanActivate {
  constructor(@Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    const token = this.options.controlToken;
    if (token !== undefined) {
      const header = req.headers.authorization ?? '';
      const match = /^Bearer\s+(.+)$/i.exec(header);
      if (!match || !sameSecret(match[1].trim(), token)) {
        throw new UnauthorizedException('a valid "Authorization: Bearer <CONTROL_TOKEN>" header is required');
      }
      return true;
    }
    if (!isLoopback(req.socket.remoteAddress)) {
      throw new ForbiddenException('control calls are accepted from this machine only; set CONTROL_TOKEN to allow others');
    }
    return true;
  }
}
