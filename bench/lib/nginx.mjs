// nginx as the ceiling for serving web_image.jpg: our own process (daemon off), a
// generated config in a temp prefix, one worker like Node's one thread, sendfile on.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childPids, hardFileLimit, sleep } from './proc.mjs';

export function findNginx() {
  for (const candidate of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'], { encoding: 'utf8' });
    if (probe.status === 0) {
      return { bin: candidate, version: (probe.stderr || probe.stdout).trim() };
    }
  }
  return undefined;
}

/** Starts nginx serving `root` on 127.0.0.1:`port`; resolves once it answers. */
export async function startNginx({ bin, prefix, root, port }) {
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const isRoot = process.getuid?.() === 0;
  const conf = `
${isRoot ? 'user root root;' : ''}
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${hardFileLimit()};
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'logs', 'error.log')} warn;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  client_body_temp_path ${join(prefix, 'tmp')};
  proxy_temp_path ${join(prefix, 'tmp')};
  fastcgi_temp_path ${join(prefix, 'tmp')};
  uwsgi_temp_path ${join(prefix, 'tmp')};
  scgi_temp_path ${join(prefix, 'tmp')};
  types { image/jpeg jpg; application/json json; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${root};
    location / { add_header Cache-Control no-cache; etag on; }
  }
}
`;
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const child = spawn(bin, ['-p', prefix, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d.toString()));
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 100 && Date.now() < deadline; i++) {
    if (child.exitCode !== null) {
      throw new Error(`nginx exited (${child.exitCode}): ${err.trim()}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/web_image.jpg`, { method: 'HEAD' });
      if (res.status === 200) {
        return { child, pids: () => [child.pid, ...childPids(child.pid)] };
      }
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`nginx did not answer within 5 s: ${err.trim()}`);
}
