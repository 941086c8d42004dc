import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { DisplayedAddressChoice } from '../../config/image-server-options.js';
import {
  type AddressCandidate,
  type AddressClass,
  chooseDisplayed,
  classifyIPv4,
  looksVirtual,
  rankCandidates,
} from './address-ranking.js';
import type { InterfaceTable } from './network-interfaces.provider.js';

// Entries shaped like os.networkInterfaces() on Linux.
function v4(address: string, netmask = '255.255.255.0', internal = false): NetworkInterfaceInfo {
  return { address, netmask, family: 'IPv4', mac: '3c:22:fb:10:20:30', internal, cidr: `${address}/24` };
}
function v6(address: string, scopeid = 0): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '3c:22:fb:10:20:30', internal: false, cidr: `${address}/64`, scopeid };
}

const lo: NetworkInterfaceInfo[] = [v4('127.0.0.1', '255.0.0.0', true), v6('::1')];

/** [interface, address] pairs in rank order. */
function order(table: InterfaceTable): [string, string][] {
  return rankCandidates(table).map((candidate) => [candidate.interface, candidate.address]);
}

describe('rankCandidates', () => {
  it.each<{ name: string; table: InterfaceTable; expected: [string, string][] }>([
    {
      name: 'LAN only: the Ethernet address, loopback last',
      table: { lo, eth0: [v4('192.168.1.20'), v6('fe80::3e22:fbff:fe10:2030', 2)] },
      expected: [['eth0', '192.168.1.20'], ['lo', '127.0.0.1']],
    },
    {
      // Both are private and physical, so neither is "better": the tie-break is the
      // interface name (wlan0 < wlan1). Phones on the hotspot usually still reach
      // 10.x through the machine itself; DISPLAYED_ADDRESS=ip:192.168.12.1 forces the
      // hotspot address, and /qr.svg?address= shows the other one.
      name: 'hotspot wlan1 + upstream Wi-Fi wlan0: wlan0 by name, as both are private',
      table: { lo, wlan1: [v4('192.168.12.1')], wlan0: [v4('10.0.4.37', '255.255.0.0')] },
      expected: [['wlan0', '10.0.4.37'], ['wlan1', '192.168.12.1'], ['lo', '127.0.0.1']],
    },
    {
      name: 'Docker bridge and veth rank below the LAN',
      table: {
        lo,
        docker0: [v4('172.17.0.1', '255.255.0.0')],
        'br-5f1c2d3e4a5b': [v4('172.18.0.1', '255.255.0.0')],
        veth3a1b2c4: [v6('fe80::a0b1:c2ff:fed3:e4f5', 7)],
        eth0: [v4('192.168.1.20')],
      },
      expected: [['eth0', '192.168.1.20'], ['br-5f1c2d3e4a5b', '172.18.0.1'], ['docker0', '172.17.0.1'], ['lo', '127.0.0.1']],
    },
    {
      name: 'VPN tunnels (tun0, wg0) rank below the LAN',
      table: { lo, tun0: [v4('10.8.0.2')], wg0: [v4('10.66.66.2')], wlp2s0: [v4('192.168.0.42')] },
      expected: [['wlp2s0', '192.168.0.42'], ['tun0', '10.8.0.2'], ['wg0', '10.66.66.2'], ['lo', '127.0.0.1']],
    },
    {
      name: 'public unicast ranks below private, above link-local',
      table: { eth1: [v4('169.254.33.7', '255.255.0.0')], eth0: [v4('203.0.113.5')], wlan0: [v4('192.168.1.9')] },
      expected: [['wlan0', '192.168.1.9'], ['eth0', '203.0.113.5'], ['eth1', '169.254.33.7']],
    },
    {
      name: 'link-local only (no DHCP answer): the link-local address before loopback',
      table: { lo, eth0: [v4('169.254.12.34', '255.255.0.0')] },
      expected: [['eth0', '169.254.12.34'], ['lo', '127.0.0.1']],
    },
    {
      name: 'loopback only',
      table: { lo },
      expected: [['lo', '127.0.0.1']],
    },
    {
      name: 'IPv6 entries are ignored',
      table: { lo: [v6('::1')], eth0: [v6('2001:db8::20'), v6('fe80::1', 2)], wlan0: [v4('192.168.1.30')] },
      expected: [['wlan0', '192.168.1.30']],
    },
    {
      name: 'Windows names: physical "Wi-Fi" / "Ethernet" before "vEthernet (WSL)"',
      table: {
        'vEthernet (WSL)': [v4('172.29.160.1', '255.255.240.0')],
        'Wi-Fi': [v4('192.168.1.50')],
        Ethernet: [v4('192.168.1.51')],
        'Loopback Pseudo-Interface 1': [v4('127.0.0.1', '255.0.0.0', true)],
      },
      expected: [
        ['Ethernet', '192.168.1.51'],
        ['Wi-Fi', '192.168.1.50'],
        ['vEthernet (WSL)', '172.29.160.1'],
        ['Loopback Pseudo-Interface 1', '127.0.0.1'],
      ],
    },
    {
      name: 'same interface: numeric address order, not string order',
      table: { eth0: [v4('192.168.1.100'), v4('192.168.1.20'), v4('192.168.1.3')] },
      expected: [['eth0', '192.168.1.3'], ['eth0', '192.168.1.20'], ['eth0', '192.168.1.100']],
    },
    {
      name: 'an address listed twice is kept once, at its best rank',
      table: { tun0: [v4('10.1.2.3')], eth0: [v4('10.1.2.3'), v4('10.1.2.3')] },
      expected: [['eth0', '10.1.2.3']],
    },
    {
      name: 'family reported as the number 4 (Node 18.0-18.3)',
      table: { eth0: [{ ...v4('192.168.1.20'), family: 4 as unknown as 'IPv4' }] },
      expected: [['eth0', '192.168.1.20']],
    },
    {
      name: 'no interfaces, and an interface with no entry',
      table: { eth0: undefined },
      expected: [],
    },
  ])('$name', ({ table, expected }) => {
    expect(order(table)).toEqual(expected);
  });

  it('does not depend on the order of the table', () => {
    const forward: InterfaceTable = { lo, eth0: [v4('192.168.1.20')], docker0: [v4('172.17.0.1')], wlan0: [v4('10.0.0.5')] };
    const backward: InterfaceTable = Object.fromEntries(Object.entries(forward).reverse());
    expect(rankCandidates(backward)).toEqual(rankCandidates(forward));
  });

  it('fills in class and virtual', () => {
    expect(rankCandidates({ docker0: [v4('172.17.0.1')], eth0: [v4('192.168.1.20')] })).toEqual<AddressCandidate[]>([
      { interface: 'eth0', address: '192.168.1.20', class: 'private', virtual: false },
      { interface: 'docker0', address: '172.17.0.1', class: 'private', virtual: true },
    ]);
  });
});

describe('classifyIPv4', () => {
  it.each<[string, AddressClass]>([
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.15.255.255', 'unicast'],
    ['172.16.0.0', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'unicast'],
    ['192.168.0.1', 'private'],
    ['192.169.0.1', 'unicast'],
    ['192.167.255.1', 'unicast'],
    ['11.0.0.1', 'unicast'],
    ['8.8.8.8', 'unicast'],
    ['100.64.0.1', 'unicast'],
    ['169.254.0.1', 'link-local'],
    ['169.253.0.1', 'unicast'],
    ['169.255.0.1', 'unicast'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
  ])('%s is %s', (address, expected) => {
    expect(classifyIPv4(address)).toBe(expected);
  });
});

describe('looksVirtual', () => {
  it.each([
    'docker0',
    'br-5f1c2d3e4a5b',
    'virbr0',
    'veth3a1b2c4',
    'vmnet8',
    'vboxnet0',
    'tun0',
    'tap0',
    'wg0',
    'utun3',
    'ztabcdef12',
    'tailscale0',
    'Tailscale',
    'ppp0',
    'ipsec0',
    'cni0',
    'flannel.1',
    'cali1234abcd',
    'podman0',
    'lxcbr0',
    'lxdbr0',
    'vEthernet (WSL)',
    'vEthernet (Default Switch)',
    'VirtualBox Host-Only Network',
    'VMware Network Adapter VMnet8',
    'Hyper-V Virtual Ethernet Adapter',
    'DOCKER0',
  ])('%s is virtual', (name) => {
    expect(looksVirtual(name)).toBe(true);
  });

  it.each(['eth0', 'eth1', 'wlan0', 'wlan1', 'enp3s0', 'eno1', 'wlp2s0', 'en0', 'en1', 'Wi-Fi', 'Ethernet', 'Ethernet 2', 'br0', 'lo'])(
    '%s is physical',
    (name) => {
      expect(looksVirtual(name)).toBe(false);
    },
  );
});

describe('chooseDisplayed', () => {
  const candidates = rankCandidates({ lo, docker0: [v4('172.17.0.1')], eth0: [v4('192.168.1.20')] });

  it.each<{ name: string; choice: DisplayedAddressChoice; address: string | undefined; warning: RegExp | undefined }>([
    { name: 'auto takes the best candidate', choice: { mode: 'auto' }, address: '192.168.1.20', warning: undefined },
    { name: 'configured ip present: that one', choice: { mode: 'ip', address: '172.17.0.1' }, address: '172.17.0.1', warning: undefined },
    { name: 'configured ip may be loopback', choice: { mode: 'ip', address: '127.0.0.1' }, address: '127.0.0.1', warning: undefined },
    {
      name: 'configured ip absent: auto, with a warning naming both addresses',
      choice: { mode: 'ip', address: '192.168.50.2' },
      address: '192.168.1.20',
      warning: /ip:192\.168\.50\.2.*no such IPv4 address.*using 192\.168\.1\.20 \(eth0\) instead/,
    },
  ])('$name', ({ choice, address, warning }) => {
    const chosen = chooseDisplayed(candidates, choice);
    expect(chosen.candidate?.address).toBe(address);
    if (warning === undefined) {
      expect(chosen.warning).toBeUndefined();
    } else {
      expect(chosen.warning).toMatch(warning);
    }
  });

  it('no candidates: nothing chosen; a configured ip still gets its warning', () => {
    expect(chooseDisplayed([], { mode: 'auto' })).toEqual({ candidate: undefined });
    const chosen = chooseDisplayed([], { mode: 'ip', address: '192.168.1.20' });
    expect(chosen.candidate).toBeUndefined();
    expect(chosen.warning).toMatch(/ip:192\.168\.1\.20.*its addresses: none/);
  });
});
