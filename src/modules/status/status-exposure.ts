import type { WatchStatus } from '../sources/folder-watch.service.js';
import type { StatusBody } from './status-body.js';

/** `/status` for a caller without control access. */
export type AnonymousStatusBody = Omit<StatusBody, 'warnings' | 'addresses' | 'watch'> & {
  addresses: { address: string; url: string }[];
  watch?: Omit<WatchStatus, 'path' | 'lastFile' | 'lastSkipped'>;
};

const HIDDEN_KEYS = new Set(['warnings', 'addresses', 'watch']);
const HIDDEN_WATCH_KEYS = new Set(['path', 'lastFile', 'lastSkipped']);

function without<T extends object>(value: T, hidden: Set<string>): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([key]) => !hidden.has(key))) as Partial<T>;
}

/**
 * What a viewer needs, without folder paths, interface names or warnings (which name
 * paths and the machine's network layout): those stay for authenticated callers.
 */
export function anonymousStatus(body: StatusBody): AnonymousStatusBody {
  const anonymous = {
    ...without(body, HIDDEN_KEYS),
    addresses: body.addresses.map(({ address, url }) => ({ address, url })),
  } as AnonymousStatusBody;
  if (body.watch !== undefined) {
    anonymous.watch = without(body.watch, HIDDEN_WATCH_KEYS) as AnonymousStatusBody['watch'];
  }
  return anonymous;
}
