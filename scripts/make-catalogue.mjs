#!/usr/bin/env node
// Builds src/modules/objects/catalogue.json from the source data named in
// src/modules/objects/CATALOGUE.md. Usage:
//   node scripts/make-catalogue.mjs <folder with NGC.csv, addendum.csv, Messier.csv, Caldwell.csv, Names.csv, constellations.json>
// The solar system and the corrections come from scripts/catalogue/*.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LY_PER_PC = 3.261563777;
const OUT = 'src/modules/objects/catalogue.json';
/** NGC/IC objects outside Messier and Caldwell are kept when this bright (V, else B) or named. */
const BRIGHT_ENOUGH = 10;
/** Gaia parallaxes of planetary nebulae and open clusters are used above this (mas, i.e. within 5 kpc). */
const PARALLAX_FLOOR_MAS = 0.2;

const TYPES = {
  'emission-nebula': 'emission nebula',
  'reflection-nebula': 'reflection nebula',
  'dark-nebula': 'dark nebula',
  nebula: 'nebula',
  'planetary-nebula': 'planetary nebula',
  'supernova-remnant': 'supernova remnant',
  'open-cluster': 'open cluster',
  'globular-cluster': 'globular cluster',
  'star-cloud': 'star cloud',
  'star-association': 'group of stars',
  asterism: 'asterism',
  'double-star': 'double star',
  star: 'star',
  'spiral-galaxy': 'spiral galaxy',
  'barred-spiral-galaxy': 'barred spiral galaxy',
  'lenticular-galaxy': 'lenticular galaxy',
  'elliptical-galaxy': 'elliptical galaxy',
  'irregular-galaxy': 'irregular galaxy',
  'dwarf-galaxy': 'dwarf galaxy',
  galaxy: 'galaxy',
  'interacting-galaxies': 'interacting galaxies',
  'galaxy-group': 'group of galaxies',
  planet: 'planet',
  'dwarf-planet': 'dwarf planet',
  moon: 'moon',
  'solar-system-star': 'star (our Sun)',
};

const source = process.argv[2];
if (!source) {
  console.error('usage: node scripts/make-catalogue.mjs <source folder> (see src/modules/objects/CATALOGUE.md)');
  process.exit(1);
}
const read = (name) => readFileSync(join(source, name), 'utf8');
const readLocal = (name) => JSON.parse(readFileSync(new URL(`./catalogue/${name}`, import.meta.url), 'utf8'));

// --- sources ---------------------------------------------------------------
function semicolonCsv(text) {
  const [header, ...lines] = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const keys = header.split(';');
  return lines.map((line) => Object.fromEntries(line.split(';').map((value, i) => [keys[i], value.trim()])));
}
function commaCsv(text) {
  const [header, ...lines] = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const keys = header.split(',');
  return lines.map((line) => {
    const values = line.split(',');
    if (values.length !== keys.length) throw new Error(`unexpected field count in: ${line}`);
    return Object.fromEntries(values.map((value, i) => [keys[i], value.trim()]));
  });
}

const openNgc = [...semicolonCsv(read('NGC.csv')), ...semicolonCsv(read('addendum.csv'))];
const constellationNames = Object.fromEntries(
  JSON.parse(read('constellations.json')).features.map((f) => [f.id.toLowerCase(), f.properties.name]),
);
const extraNames = read('Names.csv')
  .split(/\r?\n/)
  .filter(Boolean)
  .map((line) => line.split(','))
  .map(([name, ...ids]) => ({ name: name.trim(), ids: ids.map(display) }));
const solarSystem = readLocal('solar-system.json');
const corrections = readLocal('corrections.json');

// --- designations ----------------------------------------------------------
/** "NGC0224" / "NGC 224" / "IC0434" / "Mel022" / "M 42" → "NGC 224", "IC 434", "Mel 22", "M 42". */
function display(id) {
  const match = /^(NGC|IC|Mel|Cr|M|C|B|LBN|PGC|UGC|UGCA|Sh2)\s*-?\s*0*(\d+)\s*([A-Za-z]*)$/.exec(id.trim());
  if (!match) return id.trim().replace(/\s+/g, ' ');
  return `${match[1]} ${match[2]}${match[3]}`;
}
/** Messier and Caldwell are written "M42", "C14" for ids; the rest keep the space. */
const compact = (id) => id.replace(/^([MC]) (\d+)$/, '$1$2');

const byDesignation = new Map();
const byMessier = new Map();
for (const row of openNgc) {
  if (row.Type === 'NonEx') continue;
  if (row.Type !== 'Dup') byDesignation.set(display(row.Name), row);
  if (row.M && row.Type !== 'Dup') byMessier.set(Number(row.M), row);
}
/** Dup rows point at their master through the NGC / IC columns. */
for (const row of openNgc) {
  if (row.Type !== 'Dup') continue;
  const master = row.NGC ? byDesignation.get(display(`NGC${row.NGC}`)) : row.IC ? byDesignation.get(display(`IC${row.IC}`)) : undefined;
  if (master && !byDesignation.has(display(row.Name))) byDesignation.set(display(row.Name), master);
}

// --- field readers ---------------------------------------------------------
const num = (value) => (value === undefined || value === '' ? undefined : Number(value));

function typeOf(openType, ssType, hubble, ids) {
  switch (openType) {
    case 'HII':
    case 'EmN':
    case 'Cl+N':
      return 'emission-nebula';
    case 'RfN':
      return 'reflection-nebula';
    case 'DrkN':
      return 'dark-nebula';
    case 'Neb':
      return 'nebula';
    case 'PN':
      return 'planetary-nebula';
    case 'SNR':
      return 'supernova-remnant';
    case 'OCl':
      return 'open-cluster';
    case 'GCl':
      return 'globular-cluster';
    case '*Ass':
      return ids.includes('M 24') ? 'star-cloud' : 'star-association';
    case '**':
      return 'double-star';
    case '*':
      return 'star';
    case 'GPair':
    case 'GTrpl':
      return 'interacting-galaxies';
    case 'GGroup':
      return 'galaxy-group';
    case 'G':
      return galaxyType(hubble);
    default:
      break;
  }
  switch (ssType) {
    case 'OC':
      return 'open-cluster';
    case 'GC':
      return 'globular-cluster';
    case 'PN':
      return 'planetary-nebula';
    case 'DN':
      return 'dark-nebula';
    case 'BN':
      return 'nebula';
    case 'GX':
      return galaxyType(hubble);
    case 'SS':
      return 'double-star';
    default:
      return undefined;
  }
}
function galaxyType(hubble = '') {
  const h = hubble.trim();
  if (/^(dE|dSph|dS0|dIrr)/.test(h)) return 'dwarf-galaxy';
  if (/^(E|cD)/.test(h)) return 'elliptical-galaxy';
  if (/^(S0|SA0|SB0|SAB0)/.test(h)) return 'lenticular-galaxy';
  if (/^(I|IB|IAB|Im|SBm|Sm)/.test(h)) return 'irregular-galaxy';
  if (/^SB[a-d]/.test(h)) return 'barred-spiral-galaxy';
  if (/^(S|SA|SAB)[a-d]?/.test(h) && h !== '') return 'spiral-galaxy';
  return 'galaxy';
}
function constellation(abbr) {
  if (!abbr) return undefined;
  if (abbr === 'Se1' || abbr === 'Se2') return 'Serpens';
  const name = constellationNames[abbr.toLowerCase()];
  if (!name) throw new Error(`unknown constellation ${abbr}`);
  return name;
}
function roundLy(ly) {
  if (ly < 100_000) return Math.round(ly);
  const digits = Math.floor(Math.log10(ly)) - 2;
  return Math.round(ly / 10 ** digits) * 10 ** digits;
}
const round = (value, places) => Math.round(value * 10 ** places) / 10 ** places;
function size(major, minor) {
  if (major === undefined || major <= 0) return undefined;
  const places = major < 1 ? 2 : 1;
  return minor !== undefined && minor > 0 ? [round(major, places), round(minor, places)] : [round(major, places)];
}
function splitNames(text, separator) {
  return (text ?? '')
    .split(separator)
    .map((name) => name.trim())
    .filter((name) => name !== '');
}
function addUnique(list, items) {
  const seen = new Set(list.map((item) => item.toLowerCase()));
  for (const item of items) {
    if (!seen.has(item.toLowerCase())) {
      list.push(item);
      seen.add(item.toLowerCase());
    }
  }
}
/** A Gaia parallax (central star of a planetary nebula, mean of a cluster) where it is meaningful. */
function parallaxLy(row, type) {
  const pax = num(row?.Pax);
  if (pax === undefined || pax < PARALLAX_FLOOR_MAS) return undefined;
  if (type !== 'planetary-nebula' && type !== 'open-cluster') return undefined;
  return (1000 / pax) * LY_PER_PC;
}

// --- Messier and Caldwell, from SSCore's lists joined to OpenNGC -------------
const objects = [];
const used = new Set();
function fromList(rows, prefix) {
  const groups = new Map();
  for (const row of rows) {
    const ids = splitNames(row.IDs, ';').map(display);
    const primary = ids[0];
    if (!primary.startsWith(`${prefix} `)) continue; // LMC, SMC: added as NGC/IC extras below
    const group = groups.get(primary) ?? [];
    group.push({ ...row, ids });
    groups.set(primary, group);
  }
  for (const [primary, group] of groups) {
    const first = group[0];
    const ids = [];
    for (const row of group) addUnique(ids, row.ids);
    const number = Number(primary.split(' ')[1]);
    const open =
      (prefix === 'M' ? byMessier.get(number) : byDesignation.get(`C ${number}`)) ??
      ids.map((id) => byDesignation.get(id)).find(Boolean);
    if (open) {
      addUnique(ids, [display(open.Name)]);
      used.add(open);
    }
    for (const id of ids) if (byDesignation.has(id)) used.add(byDesignation.get(id));
    const type = typeOf(open?.Type, first.Type, open?.Hubble || first.Morph, ids);
    const names = [];
    for (const row of group) addUnique(names, splitNames(row.Names, ';'));
    addUnique(names, splitNames(open?.['Common names'], ','));
    const distPc = num(first.Dist);
    const distance = parallaxLy(open, type) ?? (distPc === undefined ? undefined : distPc * LY_PER_PC);
    objects.push({
      id: compact(primary),
      designations: ids.filter((id) => !/^(PK|PNG|HD|SAO|BD) /.test(id)).map(compact),
      names,
      type,
      constellation: constellation(open?.Const),
      magnitude: num(first.V) ?? num(open?.['V-Mag']) ?? num(first.B) ?? num(open?.['B-Mag']),
      sizeArcmin: size(num(open?.MajAx), num(open?.MinAx)) ?? size(num(first.Maj), num(first.Min)),
      distanceLy: distance === undefined ? undefined : roundLy(distance),
    });
  }
}
fromList(commaCsv(read('Messier.csv')), 'M');
fromList(commaCsv(read('Caldwell.csv')), 'C');

// Messier numbers already carried by Caldwell-listed designations stay with the Messier entry.
const known = new Map();
for (const object of objects) for (const id of object.designations) if (!known.has(id)) known.set(id, object);

// --- bright or named NGC / IC / addendum objects ------------------------------
for (const row of openNgc) {
  if (row.Type === 'Dup' || row.Type === 'NonEx' || used.has(row)) continue;
  const id = display(row.Name);
  if (known.has(id)) continue;
  const names = splitNames(row['Common names'], ',');
  const magnitude = num(row['V-Mag']) ?? num(row['B-Mag']);
  if (names.length === 0 && (magnitude === undefined || magnitude > BRIGHT_ENOUGH)) continue;
  if (['*', '**', 'Other', 'Nova'].includes(row.Type)) continue;
  const designations = [id];
  addUnique(designations, [row.NGC && display(`NGC${row.NGC}`), row.IC && display(`IC${row.IC}`)].filter(Boolean));
  const type = typeOf(row.Type, undefined, row.Hubble, designations);
  const distance = parallaxLy(row, type);
  objects.push({
    id,
    designations,
    names,
    type,
    constellation: constellation(row.Const),
    magnitude,
    sizeArcmin: size(num(row.MajAx), num(row.MinAx)),
    distanceLy: distance === undefined ? undefined : roundLy(distance),
  });
  for (const d of designations) known.set(d, objects.at(-1));
}

// --- names from SSCore's name list, corrections, the solar system ------------
for (const { name, ids } of extraNames) {
  const object = ids.map((id) => known.get(id)).find(Boolean);
  if (object) addUnique(object.names, [name]);
}
for (const [id, fix] of Object.entries(corrections.objects)) {
  const object = objects.find((o) => o.id === id);
  if (!object) throw new Error(`correction for unknown object ${id}`);
  const { why: _why, ...fields } = fix;
  Object.assign(object, fields);
}
for (const body of solarSystem.bodies) objects.push(body);

for (const object of objects) {
  const designations = new Set(object.designations.map((id) => id.toLowerCase()));
  object.names = object.names.filter((name) => !designations.has(name.toLowerCase()));
  if (!object.type || !TYPES[object.type]) throw new Error(`${object.id}: no type (${object.type})`);
  for (const key of Object.keys(object)) if (object[key] === undefined) delete object[key];
}

const messier = objects.filter((o) => /^M\d+$/.test(o.id)).length;
const caldwell = objects.filter((o) => /^C\d+$/.test(o.id)).length;
const lines = objects.map((object) => `    ${JSON.stringify(object)}`);
const out =
  '{\n' +
  `  "generatedBy": "scripts/make-catalogue.mjs (sources and licences: CATALOGUE.md)",\n` +
  `  "licence": "CC-BY-SA-4.0",\n` +
  `  "attribution": "OpenNGC by Mattia Verga (CC-BY-SA-4.0); SSCore deep-sky data by Tim DeBenedictis, Southern Stars; constellation names from d3-celestial by Olaf Frohn (BSD-3-Clause)",\n` +
  `  "types": ${JSON.stringify(TYPES)},\n` +
  `  "objects": [\n${lines.join(',\n')}\n  ]\n}\n`;
writeFileSync(OUT, out);
console.log(
  `${OUT}: ${objects.length} objects (Messier ${messier}, Caldwell ${caldwell}, ` +
    `with a distance ${objects.filter((o) => o.distanceLy !== undefined).length}), ${Buffer.byteLength(out)} bytes`,
);
