import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join('docs', f));
  return ['README.md', ...docs];
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
}

async function anchorsOf(file: string): Promise<Set<string>> {
  const text = await readFile(file, 'utf8');
  const withoutCode = text.replace(/```[\s\S]*?```/g, '');
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1])));
}

describe('the documentation', () => {
  it('links only to files of the repository, and to headings they have', async () => {
    const broken: string[] = [];
    for (const file of await markdownFiles()) {
      const text = await readFile(join(ROOT, file), 'utf8');
      const targets = [...text.matchAll(/\]\(([^)\s]+)\)|src="([^"]+)"/g)].map((m) => m[1] ?? m[2]);
      for (const target of targets) {
        if (/^[a-z]+:/i.test(target)) {
          continue;
        }
        const [path, hash] = target.split('#');
        const linked = path === '' ? join(ROOT, file) : resolve(ROOT, dirname(file), path);
        if (!existsSync(linked)) {
          broken.push(`${file} -> ${target}: no such file`);
        } else if (hash !== undefined && linked.endsWith('.md') && !(await anchorsOf(linked)).has(hash)) {
          broken.push(`${file} -> ${target}: no such heading`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('has an embedding example that compiles, imports included, against the built package', { timeout: 120_000 }, async () => {
    expect(existsSync(join(ROOT, 'dist/index.d.ts')), 'dist/index.d.ts is missing: npm run build').toBe(true);
    const doc = await readFile(join(ROOT, 'docs/embedding.md'), 'utf8');
    const snippet = /## A complete example\s+```ts\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(snippet, 'docs/embedding.md has no "## A complete example" ts block').toBeDefined();
    // Inside the package's folder, so `from 'stackcast'` resolves to dist/ by the package's own name.
    const dir = await mkdtemp(join(ROOT, '.docs-snippet-'));
    try {
      await writeFile(join(dir, 'main.ts'), snippet ?? '');
      const tsconfig = { extends: '../tsconfig.json', compilerOptions: { noEmit: true, rootDir: '.' }, include: ['main.ts'], exclude: [] };
      await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      const result = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: ROOT }).then(
        () => 'compiles',
        (err: Error & { stdout?: string }) => err.stdout ?? err.message,
      );
      expect(result).toBe('compiles');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
