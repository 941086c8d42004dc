import { describe, expect, it } from 'vitest';
import { ObjectCatalogue } from './object-catalogue.service.js';
import { leadingDesignationKey, objectKey } from './object-name.js';

const catalogue = new ObjectCatalogue();

describe('objectKey', () => {
  it('ignores case, spaces, hyphens, punctuation, diacritics, "the" and leading zeros', () => {
    expect(objectKey('M 42')).toBe('m42');
    expect(objectKey('Messier 042')).toBe('m42');
    expect(objectKey('m-42')).toBe('m42');
    expect(objectKey('NGC 01976')).toBe('ngc1976');
    expect(objectKey('Caldwell 14')).toBe('c14');
    expect(objectKey('Melotte 22')).toBe('mel22');
    expect(objectKey('The Orion  Nebula')).toBe('orionnebula');
    expect(objectKey("Ptolemy's Cluster")).toBe('ptolemyscluster');
    expect(objectKey('Nébuleuse d’Orion')).toBe('nebuleusedorion');
  });

  it('finds the designation at the start of a longer target name', () => {
    expect(leadingDesignationKey('M31 Panel 2')).toBe('m31');
    expect(leadingDesignationKey('NGC7000_Ha')).toBe('ngc7000');
    expect(leadingDesignationKey('Mars')).toBeUndefined();
    expect(leadingDesignationKey('Orion Nebula')).toBeUndefined();
  });
});

describe('ObjectCatalogue.lookup', () => {
  const spellings: [string, string][] = [
    ['M42', 'M42'],
    ['M 42', 'M42'],
    ['m42', 'M42'],
    ['Messier 42', 'M42'],
    ['NGC 1976', 'M42'],
    ['NGC1976', 'M42'],
    ['ngc 1976', 'M42'],
    ['Orion Nebula', 'M42'],
    ['orion nebula', 'M42'],
    ['ORION-NEBULA', 'M42'],
    ['Great Orion Nebula', 'M42'],
    ['C 14', 'C14'],
    ['Caldwell 14', 'C14'],
    ['Double Cluster', 'C14'],
    ['Cat Eye Nebula', 'C6'],
    ["Cat's Eye Nebula", 'C6'],
    ['IC 434', 'IC 434'],
    ['ic434', 'IC 434'],
    ['Horsehead Nebula', 'B 33'],
    ['Barnard 33', 'B 33'],
    ['Sh2-155', 'C9'],
    ['Melotte 22', 'M45'],
    ['M31', 'M31'],
    ['M 31', 'M31'],
    ['Andromeda Galaxy', 'M31'],
    ['NGC7000', 'C20'],
    ['North America Nebula', 'C20'],
    ['Pleiades', 'M45'],
    ['Seven Sisters', 'M45'],
    ['Mel 22', 'M45'],
    ["Bode's Galaxy", 'M81'],
    ['bodes galaxy', 'M81'],
    ['Whirlpool Galaxy', 'M51'],
    ['M102', 'M102'],
    ['Omega Centauri', 'C80'],
    ['47 Tucanae', 'C106'],
    ['Large Magellanic Cloud', 'LMC'],
    ['SMC', 'SMC'],
    ['Saturn', 'Saturn'],
    ['the Moon', 'Moon'],
    ['Lune', 'Moon'],
    ['Sun', 'Sun'],
    ['Pluto', 'Pluto'],
    ['Vénus', 'Venus'],
    ['venus', 'Venus'],
    ['M31 Panel 2', 'M31'],
  ];
  it.each(spellings)('%s → %s', (name, id) => {
    expect(catalogue.lookup(name)?.id).toBe(id);
  });

  it.each(['', 'M 111', 'C 110', 'Death Star', 'NGC 99999', 'Messier', 'Orion'])('does not know %j', (name) => {
    expect(catalogue.lookup(name)).toBeUndefined();
  });

  it('knows every Messier and Caldwell object and the planets', () => {
    for (let n = 1; n <= 110; n++) {
      expect(catalogue.lookup(`M ${n}`)?.id, `M ${n}`).toBe(`M${n}`);
    }
    for (let n = 1; n <= 109; n++) {
      expect(catalogue.lookup(`Caldwell ${n}`)?.id, `C ${n}`).toBe(`C${n}`);
    }
    for (const body of ['Sun', 'Moon', 'Mercury', 'Venus', 'Mars', 'Jupiter', 'Saturn', 'Uranus', 'Neptune', 'Pluto']) {
      expect(catalogue.lookup(body)?.id).toBe(body);
    }
  });

  it('answers the fields of the contract, in plain English, with a stable type key', () => {
    expect(catalogue.lookup('M 42')).toMatchObject({
      id: 'M42',
      names: ['Orion Nebula', 'Great Orion Nebula'],
      type: 'emission nebula',
      typeKey: 'emission-nebula',
      constellation: 'Orion',
      magnitude: 4,
      sizeArcmin: [90, 60],
      distanceLy: 1344,
    });
    expect(catalogue.lookup('M13')).toMatchObject({ type: 'globular cluster', constellation: 'Hercules' });
    expect(catalogue.lookup('M57')).toMatchObject({ type: 'planetary nebula', constellation: 'Lyra' });
    expect(catalogue.lookup('M1')).toMatchObject({ type: 'supernova remnant', constellation: 'Taurus' });
    expect(catalogue.lookup('M51')).toMatchObject({ type: 'spiral galaxy', constellation: 'Canes Venatici' });
    expect(catalogue.lookup('M13')?.designations).toEqual(['M13', 'NGC 6205']);
    // The planets move: no constellation, no distance.
    expect(catalogue.lookup('Jupiter')).toMatchObject({ type: 'planet', constellation: undefined, distanceLy: undefined });
  });

  it('holds every object once, with a type and plain-English type', () => {
    expect(catalogue.size).toBeGreaterThanOrEqual(110 + 109 + 10);
    for (let n = 1; n <= 110; n++) {
      const object = catalogue.lookup(`M${n}`);
      expect(object?.type, `M${n}`).toMatch(/^[a-z ()]+$/i);
      expect(object?.typeKey).toMatch(/^[a-z-]+$/);
      expect(object?.constellation, `M${n}`).toBeTruthy();
    }
  });
});

describe('distances against published values', () => {
  // Published values, to within 15% (published figures themselves differ by about that).
  const published: [string, number, string][] = [
    ['M42', 1_344, 'Menten et al. 2007, VLBA parallax 414 pc'],
    ['M31', 2_500_000, 'NASA / Wikipedia: 2.5 Mly'],
    ['M13', 22_200, 'Wikipedia (Harris catalogue): 22.2 kly'],
    ['M57', 2_570, 'Gaia parallax of the central star, Wikipedia: 2,570 ly'],
    ['M1', 6_500, 'Kaplan et al. 2008: 2.0 kpc'],
    ['M45', 444, 'Gaia DR2 / Wikipedia: 444 ly'],
    ['M51', 31_000_000, 'Wikipedia: 31 Mly (McQuinn et al. 2016: 28 Mly)'],
    ['M81', 11_800_000, 'Freedman et al. 1994, Cepheids: 3.63 Mpc'],
    ['M27', 1_360, 'Wikipedia: 1,360 ly'],
    ['M8', 4_100, 'Wikipedia: 4,100 ly'],
    ['M44', 577, 'Wikipedia: 577 ly'],
    ['M33', 2_730_000, 'Wikipedia: 2.73 Mly'],
    ['M87', 53_500_000, 'Wikipedia: 53.5 Mly'],
    ['M104', 31_100_000, 'Wikipedia: 31.1 Mly'],
    ['C41', 153, 'Hyades, Wikipedia: 153 ly'],
    ['C80', 17_090, 'Omega Centauri, Wikipedia: 17.09 kly'],
    ['C99', 600, 'Coalsack, Wikipedia: about 600 ly'],
    ['LMC', 163_000, 'Pietrzyński et al. 2019: 49.59 kpc'],
  ];
  it('gives a distance for every Messier and Caldwell object', () => {
    const ids = [...Array(110).keys()].map((n) => `M${n + 1}`).concat([...Array(109).keys()].map((n) => `C${n + 1}`));
    expect(ids.filter((id) => catalogue.lookup(id)?.distanceLy === undefined)).toEqual([]);
  });

  it.each(published)('%s is within 15%% of %d ly (%s)', (id, ly) => {
    const distance = catalogue.lookup(id)?.distanceLy;
    expect(distance).toBeDefined();
    expect(Math.abs((distance ?? 0) - ly) / ly).toBeLessThanOrEqual(0.15);
  });
});
