/**
 * The import graph's rules (`npm run lint` checks them): no cycles, and arrows point down
 * the layers below, never up. A folder may import its own layer and the ones under it.
 */
const LAYERS = [
  ['src/common', 'src/config'],
  ['src/shared'],
  ['src/modules/metrics', 'src/modules/web-assets', 'src/modules/network-info', 'src/modules/relay'],
  ['src/gateway', 'src/modules/objects', 'src/modules/history'],
  ['src/modules/publishing'],
  ['src/modules/lifecycle', 'src/modules/cluster'],
  ['src/modules/image-notifier'],
  ['src/modules/sources', 'src/modules/status'],
  ['src/modules/scopes'],
  ['src/modules/lobby'],
];

const path = (folders) => `^(${folders.map((f) => f.replace(/[.]/g, '\\.')).join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle, type-only imports included, means two modules should be one, or a third below both.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `no-upward-from-${layer.map((f) => f.split('/').pop()).join('-')}`,
      severity: 'error',
      comment: 'A lower layer imports a higher one: move the shared piece down instead.',
      from: { path: path(layer) },
      to: { path: path(LAYERS.slice(i + 1).flat()) },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.spec\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
