// A worker thread started from the TypeScript sources (vitest): registers a loader that
// compiles .ts (as vitest does), then runs the worker module given in workerData.
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register('./ts-worker-hooks.mjs', import.meta.url);
await import(workerData.entry);
