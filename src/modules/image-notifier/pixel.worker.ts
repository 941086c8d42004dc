import { parentPort, threadId } from 'node:worker_threads';
import { ImageRejectedError } from './image-rejected.error.js';
import { runPixelTask, type PixelTask } from './pixel-task.js';
import type { PixelReply } from './pixel-workers.service.js';

// One task at a time, in the order posted: the message port is the queue.
const port = parentPort;
if (!port) {
  throw new Error('pixel.worker runs only as a worker thread (see PixelWorkers)');
}
port.on('message', ({ id, task }: { id: number; task: PixelTask }) => {
  let reply: PixelReply;
  try {
    const result = runPixelTask(task);
    reply = { id, threadId, result };
  } catch (err) {
    const rejected = err instanceof ImageRejectedError ? { reason: err.reason } : {};
    reply = { id, threadId, error: { message: err instanceof Error ? err.message : String(err), ...rejected } };
  }
  port.postMessage(reply, transferable(reply));
});

/** The result's pixel memory (and its home level's) moves to the main thread; a slice of Node's shared pool is copied instead. */
function transferable(reply: PixelReply): ArrayBuffer[] {
  const { result } = reply;
  const pixels = result instanceof Uint8Array ? [result] : [result?.data, result?.home?.data];
  // Each memory once: a transfer list naming one twice fails the post.
  return [...new Set(pixels.filter((bytes): bytes is Uint8Array => bytes !== undefined && ownsBuffer(bytes)).map((bytes) => bytes.buffer as ArrayBuffer))];
}

function ownsBuffer(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
}
