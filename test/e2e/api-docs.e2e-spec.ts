import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>>;
}

describe('GET /api/docs', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('describes every route, the image body, its query and its answers', async () => {
    const res = await fetch(`${server.baseUrl}/api/docs-json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as OpenApi;
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/clients',
      '/api/clients/{id}',
      '/api/clients/{id}/messages',
      '/api/history',
      '/api/history/timelapse.webp',
      '/api/image',
      '/api/messages',
      '/api/objects/{name}',
      '/api/scope',
      '/api/scopes',
      '/api/server/start',
      '/api/server/stop',
      '/api/target',
      '/h/{name}',
      '/metrics',
      '/qr-wifi.svg',
      '/qr.svg',
      '/status',
    ]);
    const put = doc.paths['/api/image'].put;
    expect(Object.keys(put.requestBody?.content ?? {}).sort()).toEqual(['application/fits', 'image/fits', 'image/jpeg', 'image/png', 'image/tiff']);
    expect(put.parameters?.map((p) => `${p.in}:${p.name}`).sort()).toEqual(['query:exposure', 'query:object', 'query:stackSize']);
    expect(Object.keys(put.responses).sort()).toEqual(['200', '400', '401', '403', '413', '415', '422', '503', '507']);
    expect(Object.keys(doc.paths['/status'].get.responses).sort()).toEqual(['200', '503']);
    const notice = doc.paths['/api/clients/{id}/messages'].post;
    expect(Object.keys(notice.requestBody?.content ?? {})).toEqual(['application/json']);
    expect(Object.keys(notice.responses).sort()).toEqual(['200', '400', '401', '403', '404']);
    const object = doc.paths['/api/objects/{name}'].get;
    expect(object.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual(['path:name']);
    expect(Object.keys(object.responses).sort()).toEqual(['200', '304', '400', '404']);
  });

  it('serves the browsable page', async () => {
    const res = await fetch(`${server.baseUrl}/api/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toContain('swagger-ui');
  });
});
