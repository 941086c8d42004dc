import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../common/digest.js';
import { IncompleteBodyError, readSizedBody } from './sized-body.js';
import { UploadMemory } from './upload-memory.js';

describe('readSizedBody', () => {
  let server: Server | undefined;

  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  /** A real server whose first request's body is read with readSizedBody; resolves with its outcome. */
  async function serve(memory?: UploadMemory): Promise<{ port: number; outcome: Promise<Buffer> }> {
    let settle: (p: Promise<Buffer>) => void = () => undefined;
    const outcome = new Promise<Promise<Buffer>>((resolve) => (settle = resolve));
    server = createServer((req: IncomingMessage, res) => {
      const reading = readSizedBody(req, Number(req.headers['content-length']), memory);
      settle(reading);
      reading.then(
        () => res.end('ok'),
        () => res.destroy(),
      );
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, outcome: outcome.then((p) => p) };
  }

  function send(port: number, head: string, body: Buffer, close: boolean): void {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head);
      socket.write(body);
      if (close) {
        setTimeout(() => socket.destroy(), 100);
      }
    });
    socket.on('error', () => undefined);
    socket.on('data', () => socket.end());
  }

  it('gives the whole body, byte for byte, in one buffer of its Content-Length (2 MB in many chunks)', async () => {
    const { port, outcome } = await serve();
    const body = randomBytes(2 * 1024 * 1024 + 17);
    send(port, `PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, body, false);
    const read = await outcome;
    expect(read.length).toBe(body.length);
    expect(read.equals(body)).toBe(true);
  });

  it("a JPEG's SHA-256 is computed as it arrives: sha256() gives that digest without hashing the buffer again", async () => {
    const { port, outcome } = await serve();
    const body = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(3 * 1024 * 1024)]);
    send(port, `PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, body, false);
    const read = await outcome;
    const digest = createHash('sha256').update(body).digest('hex');
    expect(sha256(read)).toBe(digest);
    // Remembered, not recomputed: a byte changed afterwards (which the publish path never does) goes unseen.
    read[100] ^= 0xff;
    expect(sha256(read)).toBe(digest);
    // Another body (not a JPEG) is hashed when asked.
    const other = Buffer.from(read);
    expect(sha256(other)).toBe(createHash('sha256').update(other).digest('hex'));
    expect(sha256(other)).not.toBe(digest);
  });

  it.each([
    ['a FITS body is read into shared memory (the pixel worker reads it there)', Buffer.from('SIMPLE  =                    T'.padEnd(80)), true],
    ['a PNG body is not', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), false],
  ])('%s, byte for byte', async (_name, head, shared) => {
    const { port, outcome } = await serve();
    const body = Buffer.concat([head, randomBytes(1024 * 1024)]);
    send(port, `PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, body, false);
    const read = await outcome;
    expect(read.equals(body)).toBe(true);
    expect(read.buffer instanceof SharedArrayBuffer).toBe(shared);
  });

  it('reads a body into warm memory byte for byte, hashed on the way; the next body does not touch it', async () => {
    const memory = new UploadMemory(0);
    const jpeg = (): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(2 * 1024 * 1024)]);
    const first = jpeg();
    await memory.prepare(first.length, { shared: false });
    let { port, outcome } = await serve(memory);
    send(port, `PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${first.length}\r\n\r\n`, first, false);
    const readFirst = await outcome;
    expect(readFirst.buffer.byteLength).toBe(first.length * 1.25);
    expect(readFirst.equals(first)).toBe(true);
    expect(sha256(readFirst)).toBe(createHash('sha256').update(first).digest('hex'));
    await new Promise((resolve) => server?.close(resolve));
    // The next upload of that size, its warm memory made again meanwhile.
    await memory.prepare(first.length, { shared: false });
    const second = jpeg();
    ({ port, outcome } = await serve(memory));
    send(port, `PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${second.length}\r\n\r\n`, second, false);
    const readSecond = await outcome;
    expect(readSecond.equals(second)).toBe(true);
    expect(readSecond.buffer).not.toBe(readFirst.buffer);
    expect(readFirst.equals(first)).toBe(true);
  });

  it('rejects a body cut off before its Content-Length, saying how much came', async () => {
    const { port, outcome } = await serve();
    const body = randomBytes(100_000);
    send(port, `PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, body.subarray(0, 40_000), true);
    const error = await outcome.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect((error as Error).message).toMatch(/aborted after 40000 of 100000 bytes$/);
  });
});
