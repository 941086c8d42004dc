import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { request } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { uploadMemory } from '../../src/modules/image-notifier/upload-memory.js';
import sharp from 'sharp';

/** The answer to a PUT of `body` sent with Transfer-Encoding: chunked (no Content-Length), in `parts` writes. */
function putChunked(port: number, body: Buffer, parts: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/image?stackSize=7', method: 'PUT', headers: { 'Content-Type': 'image/jpeg' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    const size = Math.ceil(body.length / parts);
    for (let i = 0; i < body.length; i += size) {
      req.write(body.subarray(i, i + size));
    }
    req.end();
  });
}

/** Temp files (`.<name>.<pid>.<hex>.tmp`) left in the web folder. */
async function temps(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name.endsWith('.tmp'));
}

describe('the upload body: read into one buffer of its Content-Length, web_image.jpg staged while the pyramid is cut', () => {
  let server: TestServer;

  beforeEach(async () => {
    server = await startTestServer();
  });

  afterEach(async () => {
    await server.close();
  });

  it('a client that stops half-way through its Content-Length publishes nothing: the image, data.json and version stay, no temp file is left', async () => {
    const first = await makeJpeg({ width: 640, height: 480, color: { r: 30, g: 120, b: 200 } });
    await server.notifier.publish(first, { stackSize: 3 });
    const dataBefore = await readFile(join(server.webFolder, 'data.json'), 'utf8');
    const second = await makeJpeg({ width: 640, height: 480, color: { r: 200, g: 40, b: 40 } });

    const socket = connect(server.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(`PUT /api/image?stackSize=4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: ${second.length}\r\n\r\n`);
    socket.write(second.subarray(0, Math.floor(second.length / 2)));
    // The server has the headers and half the body; then the client is gone.
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(first);
    expect(await readFile(join(server.webFolder, 'data.json'), 'utf8')).toBe(dataBefore);
    const status = (await (await fetch(`${server.baseUrl}/status`)).json()) as { version: number; stackSize: number };
    expect([status.version, status.stackSize]).toEqual([1, 3]);
    expect(await temps(server.webFolder)).toEqual([]);

    // The next whole upload is published as usual.
    const res = await fetch(`${server.baseUrl}/api/image?stackSize=5`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(second) });
    expect(res.status).toBe(200);
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(second);
  });

  it('a chunked upload (no Content-Length) is still read whole and published byte for byte', async () => {
    const jpeg = await makeJpeg({ width: 800, height: 600, color: { r: 90, g: 200, b: 30 } });
    const answer = await putChunked(server.port, jpeg, 7);
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ published: true, bytes: jpeg.length, stackSize: 7 });
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(jpeg);
  });

  it('big uploads back to back, each read into the memory warmed after the one before or into fresh memory: every version is its own bytes', async () => {
    // Noise: JPEGs of a few MB, about the same size, as a stacker's.
    const noise = (): Promise<Buffer> => sharp(randomBytes(1600 * 1200 * 3), { raw: { width: 1600, height: 1200, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    const images = await Promise.all([noise(), noise(), noise(), noise()]);
    expect(images[0].length).toBeGreaterThan(1024 * 1024);
    const put = async (jpeg: Buffer): Promise<void> => {
      const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
      expect(res.status, await res.text()).toBe(200);
    };
    await put(images[0]);
    // The second is read into memory warmed after the first (the warming waited for) ...
    const deadline = Date.now() + 5000;
    while (!uploadMemory.isWarmFor(images[1].length, { shared: false }) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(uploadMemory.isWarmFor(images[1].length, { shared: false })).toBe(true);
    await put(images[1]);
    // ... the next ones back to back: the warming is called off, they are read into fresh memory.
    await put(images[2]);
    await put(images[3]);
    for (const [index, jpeg] of images.entries()) {
      expect((await readFile(join(server.webFolder, 'v', String(index + 1), 'image.jpg'))).equals(jpeg), `version ${index + 1}`).toBe(true);
    }
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(images[3]);
    const data = JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8')) as { IMAGE_SHA256: string };
    expect(data.IMAGE_SHA256).toBe(createHash('sha256').update(images[3]).digest('hex'));
  });

  it('a damaged JPEG is refused (422) and its staged web_image.jpg removed: the previous image and its digest stay', async () => {
    const first = await makeJpeg({ width: 640, height: 480, color: { r: 10, g: 10, b: 240 } });
    await server.notifier.publish(first, { stackSize: 2 });
    const data = JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8')) as { IMAGE_SHA256: string };
    const whole = await makeJpeg({ width: 2400, height: 1600, color: { r: 250, g: 200, b: 10 } });
    const damaged = Buffer.concat([whole.subarray(0, Math.floor(whole.length / 2)), Buffer.from([0xff, 0xd9])]);

    const res = await fetch(`${server.baseUrl}/api/image`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(damaged) });
    expect(res.status).toBe(422);
    expect(await readFile(join(server.webFolder, 'web_image.jpg'))).toEqual(first);
    expect(JSON.parse(await readFile(join(server.webFolder, 'data.json'), 'utf8'))).toMatchObject({ IMAGE_SHA256: data.IMAGE_SHA256, STACK_SIZE: 2 });
    expect(await temps(server.webFolder)).toEqual([]);
  });
});
