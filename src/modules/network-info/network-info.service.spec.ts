import type { NetworkInterfaceInfo } from 'node:os';
import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { type ImageServerOptions, resolveImageServerOptions } from '../../config/image-server-options.js';
import type { InterfaceTable, NetworkInterfacesSource } from './network-interfaces.provider.js';
import { NetworkInfoService } from './network-info.service.js';

function v4(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '255.255.255.0', family: 'IPv4', mac: '3c:22:fb:10:20:30', internal, cidr: `${address}/24` };
}

const LOOPBACK_ONLY: InterfaceTable = { lo: [v4('127.0.0.1', true)] };
const LAN: InterfaceTable = { ...LOOPBACK_ONLY, docker0: [v4('172.17.0.1')], eth0: [v4('192.168.1.20')] };

/** A fed interface table; `table` can be swapped to simulate a network change. */
class FakeInterfaces implements NetworkInterfacesSource {
  reads = 0;
  constructor(public table: InterfaceTable) {}
  read(): InterfaceTable {
    this.reads += 1;
    return this.table;
  }
}

function service(table: InterfaceTable, options: Partial<ImageServerOptions> = {}): { network: NetworkInfoService; source: FakeInterfaces } {
  const source = new FakeInterfaces(table);
  return { network: new NetworkInfoService(resolveImageServerOptions({ port: 8000, ...options }), source), source };
}

describe('NetworkInfoService', () => {
  let warn: MockInstance<Logger['warn']>;
  beforeEach(() => {
    warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  describe('advertise', () => {
    it('advertises the best candidate on the given port and lists every address', () => {
      const { network } = service(LAN);
      const advertisement = network.advertise(8123);
      expect(advertisement).toEqual({
        url: 'http://192.168.1.20:8123',
        displayedAddress: '192.168.1.20',
        limitedAccess: false,
        addresses: [
          { interface: 'eth0', address: '192.168.1.20', url: 'http://192.168.1.20:8123', class: 'private', virtual: false },
          { interface: 'docker0', address: '172.17.0.1', url: 'http://172.17.0.1:8123', class: 'private', virtual: true },
          { interface: 'lo', address: '127.0.0.1', url: 'http://127.0.0.1:8123', class: 'loopback', virtual: false },
        ],
        warnings: [],
      });
      expect(warn).not.toHaveBeenCalled();
    });

    it('honours DISPLAYED_ADDRESS=ip:<address> while the machine has it', () => {
      const { network } = service(LAN, { displayedAddress: { mode: 'ip', address: '172.17.0.1' } });
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('http://172.17.0.1:8000');
      expect(advertisement.warnings).toEqual([]);
    });

    it('falls back to auto, with a logged warning, when the configured ip is gone', () => {
      const { network } = service(LAN, { displayedAddress: { mode: 'ip', address: '10.0.0.99' } });
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('http://192.168.1.20:8000');
      expect(advertisement.warnings).toHaveLength(1);
      expect(advertisement.warnings[0]).toMatch(/10\.0\.0\.99.*192\.168\.1\.20/);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(advertisement.warnings[0]);
    });

    it('re-reads the interfaces on every call', () => {
      const { network, source } = service(LOOPBACK_ONLY);
      expect(network.advertise(8000).limitedAccess).toBe(true);
      source.table = LAN;
      const advertisement = network.advertise(8000);
      expect(source.reads).toBe(2);
      expect(advertisement.url).toBe('http://192.168.1.20:8000');
      expect(advertisement.limitedAccess).toBe(false);
    });

    it('PUBLIC_URL is the advertised URL whatever the interfaces', () => {
      const { network } = service(LAN, { publicUrl: 'https://sky.example.org/stackcast/' });
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('https://sky.example.org/stackcast/');
      expect(advertisement.displayedAddress).toBe('sky.example.org');
      expect(advertisement.limitedAccess).toBe(false);
      expect(advertisement.addresses.map((entry) => entry.url)).toContain('http://192.168.1.20:8000');
      expect(advertisement.warnings).toEqual([]);
    });

    it('PUBLIC_URL overrides even a loopback-only machine', () => {
      const { network } = service(LOOPBACK_ONLY, { publicUrl: 'http://192.168.1.1:8080' });
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('http://192.168.1.1:8080');
      expect(advertisement.displayedAddress).toBe('192.168.1.1');
      expect(advertisement.limitedAccess).toBe(false);
      expect(advertisement.warnings).toEqual([]);
    });

    it('PUBLIC_URL with no interface at all: no fallback warning', () => {
      const { network } = service({}, { publicUrl: 'http://sky.local:8000' });
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('http://sky.local:8000');
      expect(advertisement.limitedAccess).toBe(false);
      expect(advertisement.addresses).toEqual([]);
      expect(advertisement.warnings).toEqual([]);
    });

    it.each([
      ['http://localhost:8000', 'localhost'],
      ['http://127.0.0.2:9000/', '127.0.0.2'],
      ['http://[::1]:8000', '::1'],
    ])('PUBLIC_URL %s on a loopback host is limited access', (publicUrl, host) => {
      const { network } = service(LAN, { publicUrl });
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe(publicUrl);
      expect(advertisement.displayedAddress).toBe(host);
      expect(advertisement.limitedAccess).toBe(true);
      expect(advertisement.warnings).toHaveLength(1);
    });

    it('an unusable PUBLIC_URL is ignored with a warning', () => {
      const { network } = service(LAN, { publicUrl: 'sky.example.org' });
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('http://192.168.1.20:8000');
      expect(advertisement.warnings).toEqual([expect.stringMatching(/PUBLIC_URL=sky\.example\.org.*ignored/)]);
    });

    it('loopback only: limited access, with a warning that says what to do', () => {
      const { network } = service(LOOPBACK_ONLY);
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('http://127.0.0.1:8000');
      expect(advertisement.displayedAddress).toBe('127.0.0.1');
      expect(advertisement.limitedAccess).toBe(true);
      expect(advertisement.warnings).toHaveLength(1);
      const [message] = advertisement.warnings;
      expect(message).toMatch(/only this machine/);
      expect(message).toMatch(/network the phones use/);
      expect(message).toMatch(/hotspot/);
      expect(message).toMatch(/DISPLAYED_ADDRESS=ip:<address>/);
      expect(message).toMatch(/PUBLIC_URL/);
      expect(warn).toHaveBeenCalledTimes(1);
    });

    it('no interface at all: advertises 127.0.0.1, limited access', () => {
      const { network } = service({});
      const advertisement = network.advertise(8000);
      expect(advertisement.url).toBe('http://127.0.0.1:8000');
      expect(advertisement.displayedAddress).toBe('127.0.0.1');
      expect(advertisement.limitedAccess).toBe(true);
      expect(advertisement.addresses).toEqual([]);
      expect(advertisement.warnings).toEqual([
        expect.stringMatching(/No IPv4 address/),
        expect.stringMatching(/Limited access/),
      ]);
    });

    it('logs each warning once per call', () => {
      const { network } = service({}, { displayedAddress: { mode: 'ip', address: '192.168.1.20' } });
      const first = network.advertise(8000);
      expect(first.warnings).toHaveLength(3);
      expect(new Set(first.warnings).size).toBe(3);
      expect(warn).toHaveBeenCalledTimes(3);
      network.advertise(8000);
      expect(warn).toHaveBeenCalledTimes(6);
    });
  });

  describe('current', () => {
    it('advertises on the configured port when nothing was advertised yet', () => {
      const { network } = service(LAN, { port: 8765 });
      expect(network.current().url).toBe('http://192.168.1.20:8765');
    });

    it('returns the last advertisement without reading the interfaces again', () => {
      const { network, source } = service(LAN);
      const advertised = network.advertise(43210);
      source.table = LOOPBACK_ONLY;
      expect(network.current()).toBe(advertised);
      expect(network.current().url).toBe('http://192.168.1.20:43210');
      expect(source.reads).toBe(1);
    });
  });

  describe('the address re-read timer', () => {
    it('an error reading the interfaces (EMFILE when the fd table is full) is logged once, never thrown; the last advertisement stays', async () => {
      const source = new FakeInterfaces(LAN);
      const network = new NetworkInfoService(resolveImageServerOptions({ port: 8000, addressRefreshMs: 10 }), source);
      const advertised = network.advertise(8000);
      const emfile = Object.assign(new Error('A system error occurred: uv_interface_addresses returned Unknown system error 24'), { code: 'ERR_SYSTEM_ERROR' });
      let failures = 0;
      const failedThrice = new Promise<void>((resolve) => {
        source.read = () => {
          failures += 1;
          if (failures === 3) {
            resolve();
          }
          throw emfile;
        };
      });
      await failedThrice;
      network.onModuleDestroy();
      expect(network.current()).toBe(advertised);
      const lines = warn.mock.calls.map(([message]) => String(message)).filter((m) => m.includes('uv_interface_addresses'));
      expect(lines).toEqual([expect.stringMatching(/^could not read the network interfaces: .*system error 24/)]);
    });
  });

  describe('isCandidate', () => {
    it('accepts the current addresses only', () => {
      const { network } = service(LAN);
      network.advertise(8000);
      expect(network.isCandidate('192.168.1.20')).toBe(true);
      expect(network.isCandidate('172.17.0.1')).toBe(true);
      expect(network.isCandidate('127.0.0.1')).toBe(true);
      expect(network.isCandidate('192.168.1.21')).toBe(false);
      expect(network.isCandidate('')).toBe(false);
    });

    it('follows a new advertisement', () => {
      const { network, source } = service(LAN);
      network.advertise(8000);
      source.table = LOOPBACK_ONLY;
      network.advertise(8000);
      expect(network.isCandidate('192.168.1.20')).toBe(false);
    });
  });

  describe('QR codes', () => {
    it('qrSvg returns an SVG document', async () => {
      const { network } = service(LAN);
      const svg = await network.qrSvg('http://192.168.1.20:8000');
      expect(svg).toMatch(/^<svg[\s>]/);
      expect(svg).toContain('</svg>');
    });

    it('qrSvg depends on the URL', async () => {
      const { network } = service(LAN);
      expect(await network.qrSvg('http://192.168.1.20:8000')).not.toBe(await network.qrSvg('http://192.168.1.21:8000'));
    });

    it('qrTerminal returns block characters', async () => {
      const { network } = service(LAN);
      const drawing = await network.qrTerminal('http://192.168.1.20:8000');
      expect(drawing.length).toBeGreaterThan(0);
      expect(drawing.split('\n').length).toBeGreaterThan(10);
      expect(drawing).toMatch(/[█▀▄]/);
    });

    it('qrTerminal without colour has no ANSI escapes and still draws the code', async () => {
      const { network } = service(LAN);
      const coloured = await network.qrTerminal('http://192.168.1.20:8000', true);
      const plain = await network.qrTerminal('http://192.168.1.20:8000', false);
      expect(coloured).toContain('\u001b[');
      expect(plain).not.toContain('\u001b[');
      expect(plain.split('\n').length).toBeGreaterThan(10);
      expect(plain).toMatch(/[█▀▄]/);
    });
  });
});
