import type { WatchStatus } from '../sources/folder-watch.service.js';
import type { StatusBody } from './status.controller.js';

/** `/status` for a caller without control access. */
export type AnonymousStatusBody = Omit<StatusBody, 'warnings' | 'addresses' | 'watch'> & {
  addresses: { address: string; url: string }[];
  watch?: Omit<WatchStatus, 'path' | 'lastFile' | 'lastSkipped'>;
};

/**
 * What a viewer needs, without folder paths, interface names or warnings (which name
 * paths and the machine's network layout): those stay for authenticated callers.
 */
export function anonymousStatus(body: StatusBody): AnonymousStatusBody {
  const { warnings: _warnings, watch, addresses, ...rest } = body;
  const anonymous: AnonymousStatusBody = { ...rest, addresses: addresses.map(({ address, url }) => ({ address, url })) };
  if (watch !== undefined) {
    const { path: _path, lastFile: _lastFile, lastSkipped: _lastSkipped, ...counts } = watch;
    anonymous.watch = counts;
  }
  return anonymous;
}
