import { describe, expect, it } from 'vitest';
import { MIN_WARM_BYTES, QUIET_MS, UploadMemory } from './upload-memory.js';

const SIZE = 3 * MIN_WARM_BYTES;
const PLAIN = { shared: false };
const SHARED = { shared: true };

describe('UploadMemory', () => {
  it('without warm memory, gives fresh memory: shared for the pixel worker, plain otherwise', () => {
    const memory = new UploadMemory(0);
    expect(memory.take(SIZE, SHARED).buffer).toBeInstanceOf(SharedArrayBuffer);
    const plain = memory.take(SIZE, PLAIN);
    expect(plain.buffer).toBeInstanceOf(ArrayBuffer);
    expect(plain.length).toBe(SIZE);
  });

  it('after an upload, the next one of its size is read into memory touched beforehand, handed over once', async () => {
    const memory = new UploadMemory(0);
    await memory.prepareAfter(Buffer.alloc(SIZE));
    expect(memory.isWarmFor(SIZE, PLAIN)).toBe(true);
    const first = memory.take(SIZE - 100, PLAIN);
    expect(first.length).toBe(SIZE - 100);
    // The warm memory, a quarter larger than the upload it was made after.
    expect(first.buffer.byteLength).toBe(SIZE * 1.25);
    expect(memory.isWarmFor(SIZE, PLAIN)).toBe(false);
    // Never given twice: the second upload's bytes cannot land in the first one's buffer.
    const second = memory.take(SIZE - 100, PLAIN);
    expect(second.buffer).not.toBe(first.buffer);
    first.fill(1);
    second.fill(7);
    expect(first.every((byte) => byte === 1)).toBe(true);
  });

  it('after a body in shared memory (a FITS), warm memory is shared, and serves only a body that wants it', async () => {
    const memory = new UploadMemory(0);
    await memory.prepareAfter(Buffer.from(new SharedArrayBuffer(SIZE)));
    expect(memory.isWarmFor(SIZE, SHARED)).toBe(true);
    expect(memory.isWarmFor(SIZE, PLAIN)).toBe(false);
    expect(memory.take(SIZE, PLAIN).buffer.byteLength).toBe(SIZE);
    const taken = memory.take(SIZE, SHARED);
    expect(taken.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(taken.buffer.byteLength).toBe(SIZE * 1.25);
  });

  it('warm memory serves only a body of about its size: not a larger one, nor one much smaller', async () => {
    const memory = new UploadMemory(0);
    await memory.prepare(SIZE, PLAIN);
    // A quarter of headroom: the next stack's JPEG may be a little larger.
    expect(memory.isWarmFor(SIZE * 1.25, PLAIN)).toBe(true);
    expect(memory.take(SIZE * 1.25 + 1, PLAIN).buffer.byteLength).toBe(SIZE * 1.25 + 1);
    expect(memory.take(SIZE / 2, PLAIN).buffer.byteLength).toBe(SIZE / 2);
    expect(memory.isWarmFor(SIZE, PLAIN)).toBe(true);
    // A larger upload makes warm memory for its own size, for the next one.
    await memory.prepare(SIZE * 2, PLAIN);
    expect(memory.isWarmFor(SIZE * 2, PLAIN)).toBe(true);
    expect(memory.take(SIZE * 2, PLAIN).buffer.byteLength).toBe(SIZE * 2.5);
  });

  it('keeps no warm memory for small uploads', async () => {
    const memory = new UploadMemory(0);
    await memory.prepare(MIN_WARM_BYTES - 1, PLAIN);
    expect(memory.isWarmFor(MIN_WARM_BYTES - 1, PLAIN)).toBe(false);
    expect(memory.take(MIN_WARM_BYTES - 1, PLAIN).buffer.byteLength).toBe(MIN_WARM_BYTES - 1);
  });

  it('memory still being touched is not handed over (zeros may still be written into it): a fresh buffer, and it stays for the next upload', async () => {
    const memory = new UploadMemory(0);
    const size = 64 * MIN_WARM_BYTES;
    const warming = memory.prepare(size, PLAIN);
    // The quiet time (none here) is over: its pages are being touched.
    await new Promise((resolve) => setTimeout(resolve, 1));
    const taken = memory.take(size, PLAIN);
    expect(taken.buffer.byteLength).toBe(size);
    taken.fill(7);
    await warming;
    expect(taken.every((byte) => byte === 7)).toBe(true);
    expect(memory.isWarmFor(size, PLAIN)).toBe(true);
    expect(memory.take(size, PLAIN).buffer.byteLength).toBe(size * 1.25);
  });

  it('uploads back to back warm nothing: an upload that begins within the quiet time calls the warming off', async () => {
    expect(QUIET_MS).toBeGreaterThan(0);
    const memory = new UploadMemory(50);
    const warming = memory.prepare(SIZE, PLAIN);
    const next = memory.take(SIZE, PLAIN);
    await warming;
    expect(next.buffer.byteLength).toBe(SIZE);
    expect(memory.isWarmFor(SIZE, PLAIN)).toBe(false);
    // After a quiet moment it is warmed.
    await memory.prepare(SIZE, PLAIN);
    expect(memory.isWarmFor(SIZE, PLAIN)).toBe(true);
  });
});
