import type { NetworkInterfaceInfo } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { InterfaceTable } from '../../src/modules/network-info/network-interfaces.provider.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { RecordingClient } from '../helpers/ws-client.js';

function v4(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: `${address}/24` };
}

const STAR_PARTY: InterfaceTable = {
  lo: [v4('127.0.0.1', true)],
  docker0: [v4('172.17.0.1')],
  wlan0: [v4('192.168.1.20')],
  tun0: [v4('10.8.0.2')],
};

describe('GET /status and /qr.svg', () => {
  let server: TestServer;

  afterEach(async () => {
    await server.close();
  });

  it('reports the advertised LAN address, every candidate, clients and metrics', async () => {
    server = await startTestServer({}, { interfaces: STAR_PARTY });
    const client = await RecordingClient.connect(server.wsUrl);
    await server.notifier.updateMetrics({ stackSize: 12, exposureSeconds: 360 });
    const res = await fetch(`${server.baseUrl}/status`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown> & { addresses: { interface: string; address: string; url: string }[] };
    expect(body).toMatchObject({
      status: 'running',
      port: server.port,
      url: `http://192.168.1.20:${server.port}`,
      displayedAddress: '192.168.1.20',
      limitedAccess: false,
      clients: 1,
      stackSize: 12,
      exposure: '0:06:00',
    });
    expect(body.addresses[0]).toMatchObject({ interface: 'wlan0', address: '192.168.1.20', url: `http://192.168.1.20:${server.port}` });
    expect(body.addresses.map((a) => a.interface)).toEqual(['wlan0', 'docker0', 'tun0', 'lo']);
    client.close();
  });

  it('loopback only: keeps running and says limitedAccess', async () => {
    server = await startTestServer({}, { interfaces: { lo: [v4('127.0.0.1', true)] } });
    const body = (await (await fetch(`${server.baseUrl}/status`)).json()) as { limitedAccess: boolean; status: string; warnings: string[] };
    expect(body.status).toBe('running');
    expect(body.limitedAccess).toBe(true);
    expect(body.warnings.join(' ')).toMatch(/DISPLAYED_ADDRESS|PUBLIC_URL/);
  });

  it('PUBLIC_URL is the advertised URL whatever the interfaces', async () => {
    server = await startTestServer({ publicUrl: 'https://sky.example.org/live' }, { interfaces: STAR_PARTY });
    const body = (await (await fetch(`${server.baseUrl}/status`)).json()) as { url: string; limitedAccess: boolean };
    expect(body.url).toBe('https://sky.example.org/live');
    expect(body.limitedAccess).toBe(false);
  });

  it('ip:<address> absent falls back to auto with a warning', async () => {
    server = await startTestServer({ displayedAddress: { mode: 'ip', address: '192.168.50.5' } }, { interfaces: STAR_PARTY });
    const body = (await (await fetch(`${server.baseUrl}/status`)).json()) as { displayedAddress: string; warnings: string[] };
    expect(body.displayedAddress).toBe('192.168.1.20');
    expect(body.warnings.join(' ')).toContain('192.168.50.5');
  });

  it('/qr.svg encodes the advertised URL; ?address= another candidate; a non-candidate is 400', async () => {
    server = await startTestServer({}, { interfaces: STAR_PARTY });
    const qr = await fetch(`${server.baseUrl}/qr.svg`);
    expect(qr.status).toBe(200);
    expect(qr.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    const svg = await qr.text();
    expect(svg).toMatch(/^<svg/);
    const other = await fetch(`${server.baseUrl}/qr.svg?address=10.8.0.2`);
    expect(other.status).toBe(200);
    expect(await other.text()).not.toBe(svg);
    const bad = await fetch(`${server.baseUrl}/qr.svg?address=8.8.8.8`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain('192.168.1.20');
  });
});
