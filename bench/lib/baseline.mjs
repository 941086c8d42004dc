// A baseline build for the benches that compare two builds side by side.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(BENCH, '..');

/** Compiles `ref`'s src/ into bench/.build-baseline/<sha>/dist (kept between runs); `log` says when it builds. */
export function buildBaseline(ref, log) {
  const sha = execFileSync('git', ['rev-parse', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = join(BENCH, '.build-baseline', sha);
  if (existsSync(join(dir, 'dist', 'main.js'))) {
    return { sha, dist: join(dir, 'dist') };
  }
  log(`building ${ref} (${sha.slice(0, 7)}) into ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('bash', ['-c', `git archive ${sha} src scripts tsconfig.json | tar -x -C '${dir}'`], { cwd: ROOT });
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir, stdio: 'inherit' });
  if (tsc.status !== 0) {
    throw new Error(`tsc failed for ${ref}`);
  }
  execFileSync(process.execPath, [join(dir, 'scripts', 'copy-assets.mjs')], { cwd: dir });
  return { sha, dist: join(dir, 'dist') };
}
