import { describe, expect, it } from 'vitest';
import { MIN_WARM_BYTES, UploadMemory } from './upload-memory.js';

const SIZE = 3 * MIN_WARM_BYTES;

describe('UploadMemory', () => {
  it('without warm memory, gives fresh memory: shared for the pixel worker, plain otherwise', () => {
    const memory = new UploadMemory();
    expect(memory.take(SIZE, { shared: true }).buffer).toBeInstanceOf(SharedArrayBuffer);
    const plain = memory.take(SIZE, { shared: false });
    expect(plain.buffer).toBeInstanceOf(ArrayBuffer);
    expect(plain.length).toBe(SIZE);
  });

  it('after an upload, the next one of its size is read into memory touched beforehand, handed over once', async () => {
    const memory = new UploadMemory();
    await memory.prepare(SIZE);
    expect(memory.isWarmFor(SIZE)).toBe(true);
    const first = memory.take(SIZE - 100, { shared: false });
    // The warm memory is shared, whatever was asked: a JPEG in it is read as any buffer.
    expect(first.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(first.length).toBe(SIZE - 100);
    expect(memory.isWarmFor(SIZE)).toBe(false);
    // Never given twice: the second upload's bytes cannot land in the first one's buffer.
    const second = memory.take(SIZE - 100, { shared: false });
    expect(second.buffer).not.toBe(first.buffer);
    second.fill(7);
    expect(first.every((byte) => byte === 0)).toBe(true);
  });

  it('warm memory serves only a body of about its size: not a larger one, nor one under half of it', async () => {
    const memory = new UploadMemory();
    await memory.prepare(SIZE);
    // A quarter of headroom: the next stack's JPEG may be a little larger.
    expect(memory.isWarmFor(SIZE * 1.25)).toBe(true);
    expect(memory.take(SIZE * 1.25 + 1, { shared: false }).buffer).toBeInstanceOf(ArrayBuffer);
    expect(memory.take(SIZE / 2, { shared: false }).buffer).toBeInstanceOf(ArrayBuffer);
    expect(memory.isWarmFor(SIZE)).toBe(true);
    // A larger upload makes warm memory for its own size, for the next one.
    await memory.prepare(SIZE * 2);
    expect(memory.isWarmFor(SIZE * 2)).toBe(true);
    expect(memory.take(SIZE * 2, { shared: false }).buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('keeps no warm memory for small uploads', async () => {
    const memory = new UploadMemory();
    await memory.prepare(MIN_WARM_BYTES - 1);
    expect(memory.isWarmFor(MIN_WARM_BYTES - 1)).toBe(false);
    expect(memory.take(MIN_WARM_BYTES - 1, { shared: false }).buffer).toBeInstanceOf(ArrayBuffer);
  });

  it('memory taken while its pages are still being touched is handed over as it is, and the touching stops', async () => {
    const memory = new UploadMemory();
    const warming = memory.prepare(64 * MIN_WARM_BYTES);
    const taken = memory.take(64 * MIN_WARM_BYTES, { shared: false });
    expect(taken.buffer).toBeInstanceOf(SharedArrayBuffer);
    await warming;
    expect(memory.isWarmFor(64 * MIN_WARM_BYTES)).toBe(false);
    // Fresh again for the next one.
    expect(memory.take(64 * MIN_WARM_BYTES, { shared: false }).buffer).toBeInstanceOf(ArrayBuffer);
  });
});
