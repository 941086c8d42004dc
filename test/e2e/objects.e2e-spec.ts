import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import type { CatalogueObject } from '../../src/modules/objects/object-catalogue.service.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** The route's body is the catalogue's own type. */
type ObjectBody = CatalogueObject;

describe('GET /api/objects/<name>', () => {
  let server: TestServer;
  const get = (name: string, headers: Record<string, string> = {}) =>
    fetch(`${server.baseUrl}/api/objects/${encodeURIComponent(name)}`, { headers });

  beforeAll(async () => {
    // A control token: the route must stay public anyway.
    server = await startTestServer({ controlToken: 'objects-e2e-token-0123456789' });
  });
  afterAll(() => server.close());

  it('answers the Orion Nebula with the fields of the contract, publicly and cacheably', async () => {
    const res = await get('M 42');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=86400');
    expect(res.headers.get('etag')).toMatch(/^"[\w-]+"$/);
    const body = (await res.json()) as ObjectBody;
    expect(body).toEqual({
      id: 'M42',
      names: ['Orion Nebula', 'Great Orion Nebula'],
      type: 'emission nebula',
      typeKey: 'emission-nebula',
      designations: ['M42', 'NGC 1976', 'LBN 974'],
      constellation: 'Orion',
      magnitude: 4,
      sizeArcmin: [90, 60],
      distanceLy: 1344,
    });
  });

  it.each([
    ['M42', 'M42'],
    ['m42', 'M42'],
    ['Messier 42', 'M42'],
    ['NGC1976', 'M42'],
    ['ngc 1976', 'M42'],
    ['orion nebula', 'M42'],
    ['M31', 'M31'],
    ['NGC7000', 'C20'],
    ['North America Nebula', 'C20'],
    ['Caldwell 14', 'C14'],
    ['IC 434', 'IC 434'],
    ['Pleiades', 'M45'],
    ['Saturn', 'Saturn'],
    ['Lune', 'Moon'],
    ['Plutón', 'Pluto'],
  ])('%s → %s', async (name, id) => {
    const res = await get(name);
    expect(res.status).toBe(200);
    expect(((await res.json()) as ObjectBody).id).toBe(id);
  });

  it('omits the fields it does not know', async () => {
    const body = (await (await get('Jupiter')).json()) as ObjectBody;
    expect(Object.keys(body).sort()).toEqual(['designations', 'id', 'names', 'type', 'typeKey']);
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await get('Andromeda Galaxy');
    const etag = first.headers.get('etag') ?? '';
    const again = await get('M 31', { 'If-None-Match': etag });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe('');
    const other = await get('M 33', { 'If-None-Match': etag });
    expect(other.status).toBe(200);
  });

  it.each(['Death Star', 'M 111', 'C 110', 'NGC 99999'])('404 with a clear JSON message for %j', async (name) => {
    const res = await get(name);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { message: string };
    expect(body.message).toContain(`no object named ${JSON.stringify(name)}`);
    expect(body.message).toContain('Messier and Caldwell');
  });

  it('400 for a name longer than 200 characters', async () => {
    const res = await get('M'.repeat(201));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe('an object name is at most 200 characters (got 201)');
  });
});

describe('the built service (dist/main.js)', () => {
  it('carries the catalogue file in dist: GET /api/objects/M13 answers', async () => {
    const temp = await makeTempFolder();
    const service = await spawnService({ WORK_FOLDER: join(temp.path, 'work') }, 60_000);
    try {
      const res = await fetch(`${service.baseUrl}/api/objects/M13`);
      expect(res.status).toBe(200);
      expect((await res.json()) as ObjectBody).toMatchObject({ id: 'M13', type: 'globular cluster', constellation: 'Hercules' });
    } finally {
      expect(await service.kill('SIGTERM')).toBe(0);
      await temp.remove();
    }
  });
});
