// tsc compiles only .ts: copy the viewer's sources and the object catalogue next to their compiled modules.
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('dist/modules/web-assets', { recursive: true });
cpSync('src/modules/web-assets/viewer', 'dist/modules/web-assets/viewer', { recursive: true });
mkdirSync('dist/modules/objects', { recursive: true });
cpSync('src/modules/objects/catalogue.json', 'dist/modules/objects/catalogue.json');
// The data's licence (CC-BY-SA-4.0) asks for its attribution wherever it goes.
cpSync('src/modules/objects/CATALOGUE.md', 'dist/modules/objects/CATALOGUE.md');
