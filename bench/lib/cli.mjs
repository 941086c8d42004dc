// What every bench script shares: its command-line options, a log with the elapsed time,
// and the temp folders it removes at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The script's own arguments. */
export const args = process.argv.slice(2);

/** Whether `--name` was given. */
export const flag = (name) => args.includes(name);

/** The value after `--name`, or undefined. */
export const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

/** When the script started (Date.now()). */
export const started = Date.now();

/** Seconds since the script started. */
export const elapsedSeconds = () => (Date.now() - started) / 1000;

/** A log to stderr whose lines read `[tag   12.3s] msg`; `width` pads the seconds. */
export function logger(tag, width = 5) {
  return (msg) => process.stderr.write(`[${tag} ${elapsedSeconds().toFixed(1).padStart(width)}s] ${msg}\n`);
}

/** Temp folders of one run: `tempDir(prefix)` makes one, `removeTemps()` removes all made so far. */
export function tempFolders() {
  const temps = [];
  return {
    tempDir(prefix) {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      temps.push(dir);
      return dir;
    },
    removeTemps() {
      for (const dir of temps.splice(0)) {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
