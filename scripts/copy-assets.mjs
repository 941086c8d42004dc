// tsc compiles only .ts: copy the viewer's sources next to the compiled web-assets module.
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('dist/modules/web-assets', { recursive: true });
cpSync('src/modules/web-assets/viewer', 'dist/modules/web-assets/viewer', { recursive: true });
