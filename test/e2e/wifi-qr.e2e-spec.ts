import jsQRModule from 'jsqr';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { runService, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

// jsqr is CommonJS: Node hands over module.exports, whose `default` is the decoder too.
const jsQR = jsQRModule.default;

/** An SSID holding every character the WIFI: format reserves. */
const SSID = 'Star;Party,"M:31"\\';
const PASSWORD = 'dark;sky:M31,"go"\\';
const ESCAPED = 'WIFI:T:WPA;S:Star\\;Party\\,\\"M\\:31\\"\\\\;P:dark\\;sky\\:M31\\,\\"go\\"\\\\;;';

/** Renders an SVG QR code with sharp and reads it with a real decoder (jsQR). */
async function decodeSvg(svg: string): Promise<string | undefined> {
  const { data, info } = await sharp(Buffer.from(svg), { density: 300 })
    .flatten({ background: '#ffffff' })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return jsQR(new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), info.width, info.height)?.data;
}

async function fetchSvg(url: string): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('GET /qr-wifi.svg', () => {
  let server: TestServer | undefined;
  let spawned: SpawnedService | undefined;

  afterEach(async () => {
    await server?.close();
    await spawned?.kill();
    server = undefined;
    spawned = undefined;
  });

  it('decodes to the escaped WIFI: text (WPA), and /qr.svg to the page URL', async () => {
    server = await startTestServer({ wifiSsid: SSID, wifiPassword: PASSWORD });
    const wifi = await fetchSvg(`${server.baseUrl}/qr-wifi.svg`);
    expect(wifi.status).toBe(200);
    expect(wifi.type).toMatch(/^image\/svg\+xml/);
    expect(await decodeSvg(wifi.body)).toBe(ESCAPED);

    const page = await fetchSvg(`${server.baseUrl}/qr.svg`);
    const status = (await (await fetch(`${server.baseUrl}/status`)).json()) as { url: string; wifi: unknown };
    expect(await decodeSvg(page.body)).toBe(status.url);
    expect(status.wifi).toEqual({ ssid: SSID });
  });

  it('writes T:nopass for an open network (no WIFI_PASSWORD)', async () => {
    server = await startTestServer({ wifiSsid: 'Messier 42' });
    expect(await decodeSvg((await fetchSvg(`${server.baseUrl}/qr-wifi.svg`)).body)).toBe('WIFI:T:nopass;S:Messier 42;;');
  });

  it('answers 404 naming WIFI_SSID when no SSID is set, and /status says wifi: null', async () => {
    server = await startTestServer();
    const res = await fetch(`${server.baseUrl}/qr-wifi.svg`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { message: string }).message).toMatch(/WIFI_SSID .*is not set/);
    expect(((await (await fetch(`${server.baseUrl}/status`)).json()) as { wifi: unknown }).wifi).toBeNull();
  });

  it('the standalone service prints both codes with their steps, and the password nowhere', async () => {
    const work = await makeTempFolder();
    try {
      spawned = await spawnService({ WORK_FOLDER: work.path, WIFI_SSID: SSID, WIFI_PASSWORD: PASSWORD, CONTROL_TOKEN: 'a-control-token-of-32-characters' });
      const out = spawned.stdout();
      const join = out.indexOf(`1. Join the Wi-Fi "${SSID}"`);
      const open = out.indexOf('2. Open the page: http');
      expect(join).toBeGreaterThan(-1);
      expect(open).toBeGreaterThan(join);
      // /status, anonymous and with control access.
      const anonymous = await (await fetch(`${spawned.baseUrl}/status`)).text();
      const control = await (
        await fetch(`${spawned.baseUrl}/status`, { headers: { authorization: 'Bearer a-control-token-of-32-characters' } })
      ).text();
      expect(control).toContain('"wifi":{"ssid"');
      await spawned.kill();
      for (const text of [spawned.stdout(), spawned.stderr(), anonymous, control]) {
        expect(text).not.toContain(PASSWORD);
        expect(text).not.toContain('dark;sky');
      }
    } finally {
      await work.remove();
    }
  });

  it('a bad WIFI_PASSWORD stops startup with one line naming it, never its value', async () => {
    const work = await makeTempFolder();
    try {
      const run = runService({ WORK_FOLDER: work.path, WIFI_SSID: 'Messier 42', WIFI_PASSWORD: 'short;7' });
      expect(await run.exited).toBe(1);
      const lines = run.err() + run.out();
      expect(lines).toMatch(/WIFI_PASSWORD \(7 characters\) is invalid: expected .*8 to 63 characters/);
      expect(lines).not.toContain('short;7');
    } finally {
      await work.remove();
    }
  });
});
