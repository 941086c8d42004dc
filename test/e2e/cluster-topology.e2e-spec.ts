import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { freePort, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { RecordingClient } from '../helpers/ws-client.js';

const NGINX = '/usr/sbin/nginx';
const SITE_CONF = fileURLToPath(new URL('../../deploy/nginx-stackcast.conf', import.meta.url));
const TOKEN = 'topology-test-token-0123456789';

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * nginx-light with the compose file's site config, its upstream names and listen port
 * rewritten to loopback ports: the same topology as docker-compose.scale.yml, as processes.
 */
async function startBalancer(prefix: string, port: number, upstreams: number[]): Promise<ChildProcess> {
  let site = readFileSync(SITE_CONF, 'utf8').replace('listen 8080;', `listen 127.0.0.1:${port};`);
  upstreams.forEach((p, i) => (site = site.replace(`stackcast-${i + 1}:8000`, `127.0.0.1:${p}`)));
  await mkdir(join(prefix, 'logs'), { recursive: true });
  await writeFile(join(prefix, 'site.conf'), site);
  const tmp = join(prefix, 'tmp');
  await mkdir(tmp, { recursive: true });
  await writeFile(
    join(prefix, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root root;' : ''}
daemon off; master_process on; worker_processes 1;
pid ${join(prefix, 'nginx.pid')}; error_log ${join(prefix, 'logs', 'error.log')} warn;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${tmp}; proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  include ${join(prefix, 'site.conf')}; }
`,
  );
  const child = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await until(async () => (await fetch(`http://127.0.0.1:${port}/lb-health`)).ok, 'nginx to answer');
  return child;
}

describe('the compose topology as processes: redis, two replicas, nginx passing /ws', { timeout: 120_000 }, () => {
  let redis: RedisTestServer;
  let lb: ChildProcess;
  let lbUrl: string;
  const replicas: SpawnedService[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    if (!existsSync(NGINX)) {
      throw new Error(`${NGINX} is missing: apt-get install -y nginx-light`);
    }
    redis = await startRedisServer();
    const started = await Promise.all(
      [0, 1].map(async () => {
        const temp = await makeTempFolder();
        cleanups.push(temp.remove);
        return spawnService({ WORK_FOLDER: temp.path, REDIS_URL: redis.url, CONTROL_TOKEN: TOKEN }, 60_000);
      }),
    );
    replicas.push(...started);
    const prefix = await makeTempFolder('stackcast-nginx-');
    cleanups.push(prefix.remove);
    const lbPort = await freePort();
    lb = await startBalancer(prefix.path, lbPort, started.map((s) => s.port));
    lbUrl = `http://127.0.0.1:${lbPort}`;
  }, 120_000);

  afterAll(async () => {
    if (lb && lb.exitCode === null) {
      const gone = new Promise((r) => lb.once('exit', r));
      lb.kill('SIGTERM');
      await gone;
    }
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    await redis?.stop();
    await Promise.all(cleanups.map((c) => c()));
  });

  it('publishes through the balancer reach every replica; a killed replica hands its viewer to the other', async () => {
    const put = (jpeg: Buffer): Promise<Response> =>
      fetch(`${lbUrl}/api/image`, { method: 'PUT', body: new Uint8Array(jpeg), headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${TOKEN}` } });
    const viaLb = await RecordingClient.connect(`${lbUrl.replace('http', 'ws')}/ws`);
    const direct = await Promise.all(replicas.map((r) => RecordingClient.connect(`ws://127.0.0.1:${r.port}/ws`)));
    try {
      const first = await makeJpeg({ color: { r: 250, g: 120, b: 0 } });
      expect((await put(first)).status).toBe(200);
      for (const v of [viaLb, ...direct]) {
        await v.waitFor((c) => c.count('new_image') >= 1, 5000, 'new_image');
      }
      expect(Buffer.from(await (await fetch(`${lbUrl}/web_image.jpg`)).arrayBuffer()).equals(first)).toBe(true);

      // The replica the balancer sends this client to dies: only its viewers lose the connection.
      const servedBy = ((await (await fetch(`${lbUrl}/status`)).json()) as { cluster: { replica: string } }).cluster.replica;
      const ids = await Promise.all(replicas.map(async (r) => ((await (await fetch(`${r.baseUrl}/status`)).json()) as { cluster: { replica: string } }).cluster.replica));
      const victim = ids.indexOf(servedBy);
      expect(victim).toBeGreaterThanOrEqual(0);
      await replicas[victim].kill('SIGKILL');
      await viaLb.closed;
      expect(direct[1 - victim].closeCode).toBeUndefined();

      const again = await RecordingClient.connect(`${lbUrl.replace('http', 'ws')}/ws`);
      try {
        const second = await makeJpeg({ color: { r: 0, g: 90, b: 250 } });
        expect((await put(second)).status).toBe(200);
        await again.waitFor((c) => c.count('new_image') >= 1, 5000, 'new_image after failover');
        expect(Buffer.from(await (await fetch(`${lbUrl}/web_image.jpg`)).arrayBuffer()).equals(second)).toBe(true);
        const status = (await (await fetch(`${lbUrl}/status`)).json()) as { cluster: { replica: string; redis: string } };
        expect(status.cluster).toEqual({ replica: ids[1 - victim], redis: 'up' });
      } finally {
        again.socket.terminate();
      }
    } finally {
      for (const v of [viaLb, ...direct]) {
        v.socket.terminate();
      }
    }
  });
});
