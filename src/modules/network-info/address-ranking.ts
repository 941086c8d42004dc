import { isIPv4 } from 'node:net';
import type { DisplayedAddressChoice } from '../../config/image-server-options.js';
import type { InterfaceTable } from './network-interfaces.provider.js';

/**
 * Reachability class of an IPv4 address, best first: phones on the LAN can
 * reach a private address, perhaps a public unicast one, rarely a link-local
 * one, and never a loopback one.
 */
export type AddressClass = 'private' | 'unicast' | 'link-local' | 'loopback';

/** One IPv4 address of the machine that could be shown to the phones. */
export interface AddressCandidate {
  /** Interface name as the OS reports it (`wlan0`, `en0`, `Wi-Fi`). */
  interface: string;
  /** Dotted-quad IPv4 address. */
  address: string;
  class: AddressClass;
  /** The interface looks virtual (container bridge, VPN tunnel, VM adapter): phones are rarely on it. */
  virtual: boolean;
}

const CLASS_ORDER: Record<AddressClass, number> = { private: 0, unicast: 1, 'link-local': 2, loopback: 3 };

/** Classifies a dotted-quad IPv4 address; anything that is not private, link-local or loopback is unicast. */
export function classifyIPv4(address: string): AddressClass {
  const [a, b] = address.split('.').map(Number);
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) {
    return 'private';
  }
  if (a === 169 && b === 254) {
    return 'link-local';
  }
  if (a === 127) {
    return 'loopback';
  }
  return 'unicast';
}

// Prefixes match Linux/macOS names (docker0, br-1a2b, veth9f, utun3, wg0...); the
// substrings match Windows adapter names ("vEthernet (WSL)", "VMware Network Adapter VMnet8").
// `br-` keeps its dash: `br0` is often the bridge that carries the physical LAN.
const VIRTUAL_PREFIX =
  /^(docker|br-|virbr|veth|vmnet|vboxnet|tun|tap|wg|utun|zt|tailscale|ppp|ipsec|cni|flannel|cali|podman|lxc|lxd)/i;
const VIRTUAL_SUBSTRING = /vethernet|virtualbox|vmware|hyper-v/i;

/** Whether an interface name looks like a virtual adapter rather than the machine's Ethernet or Wi-Fi. */
export function looksVirtual(interfaceName: string): boolean {
  return VIRTUAL_PREFIX.test(interfaceName) || VIRTUAL_SUBSTRING.test(interfaceName);
}

// Node 18.0–18.3 reported `family` as the number 4; the typings only know 'IPv4'.
function isIPv4Family(family: string | number): boolean {
  return family === 'IPv4' || family === 4;
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}

function compareCandidates(x: AddressCandidate, y: AddressCandidate): number {
  return (
    CLASS_ORDER[x.class] - CLASS_ORDER[y.class] ||
    Number(x.virtual) - Number(y.virtual) ||
    // Code-unit order, not localeCompare: the pick must not depend on the machine's locale.
    (x.interface < y.interface ? -1 : x.interface > y.interface ? 1 : 0) ||
    ipv4ToNumber(x.address) - ipv4ToNumber(y.address)
  );
}

/**
 * Every IPv4 address of every interface, best first: by class (private,
 * unicast, link-local, loopback), physical before virtual within a class,
 * then by interface name and numeric address so the pick is deterministic.
 * An address listed twice is kept once, at its best rank.
 */
export function rankCandidates(table: InterfaceTable): AddressCandidate[] {
  const all: AddressCandidate[] = [];
  for (const [name, infos] of Object.entries(table)) {
    for (const info of infos ?? []) {
      if (isIPv4Family(info.family) && isIPv4(info.address)) {
        all.push({ interface: name, address: info.address, class: classifyIPv4(info.address), virtual: looksVirtual(name) });
      }
    }
  }
  all.sort(compareCandidates);
  const seen = new Set<string>();
  return all.filter((candidate) => {
    if (seen.has(candidate.address)) {
      return false;
    }
    seen.add(candidate.address);
    return true;
  });
}

/** The displayed candidate, and a warning when the configured address could not be honoured. */
export interface DisplayedChoice {
  /** Undefined only when there is no IPv4 candidate at all. */
  candidate: AddressCandidate | undefined;
  warning?: string;
}

/**
 * Applies `DISPLAYED_ADDRESS` to ranked candidates: `auto` takes the first;
 * `ip:<address>` takes that address while the machine has it, and otherwise
 * falls back to `auto` with a warning (a laptop that changed networks should
 * still advertise something reachable rather than a dead address).
 */
export function chooseDisplayed(candidates: readonly AddressCandidate[], choice: DisplayedAddressChoice): DisplayedChoice {
  const best = candidates.at(0);
  switch (choice.mode) {
    case 'auto':
      return { candidate: best };
    case 'ip': {
      const configured = candidates.find((candidate) => candidate.address === choice.address);
      if (configured) {
        return { candidate: configured };
      }
      const available = candidates.map((candidate) => candidate.address).join(', ') || 'none';
      const fallback = best ? `using ${best.address} (${best.interface}) instead` : 'and no other IPv4 address to use instead';
      return {
        candidate: best,
        warning: `DISPLAYED_ADDRESS=ip:${choice.address}: this machine has no such IPv4 address now (its addresses: ${available}); ${fallback}.`,
      };
    }
    default: {
      const unknown: never = choice;
      throw new Error(`Unknown displayed address mode: ${JSON.stringify(unknown)}`);
    }
  }
}
