// Module hooks for ts-worker.mjs: `./x.js` imported from a .ts file resolves to `./x.ts`
// (the sources' NodeNext spelling), and .ts files are compiled by TypeScript's transpiler:
// pure JS, because a native addon (@swc/core) in a worker crashes the process when it is terminated.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export async function resolve(specifier, context, next) {
  if (specifier.endsWith('.js') && context.parentURL?.endsWith('.ts') && (specifier.startsWith('./') || specifier.startsWith('../'))) {
    try {
      return await next(`${specifier.slice(0, -3)}.ts`, context);
    } catch {
      // Not a TypeScript source: resolve as written.
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.endsWith('.ts')) {
    return next(url, context);
  }
  const filename = fileURLToPath(url);
  const { outputText } = ts.transpileModule(await readFile(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      inlineSourceMap: true,
    },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
