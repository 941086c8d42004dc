import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, runService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { httpsGet, makeTestCertificate } from '../helpers/tls-cert.js';
import { RecordingClient } from '../helpers/ws-client.js';

type Run = ReturnType<typeof runService>;

/** Resolves with the advertised URL once the service logs that it is live. */
async function live(run: Run, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void run.exited.then((code) => (exitCode = code));
  for (;;) {
    const match = /stackcast is live at (\S+)/.exec(run.out());
    if (match) {
      return match[1];
    }
    if (exitCode !== undefined || Date.now() > deadline) {
      run.child.kill('SIGKILL');
      throw new Error(`service did not go live (exit ${String(exitCode)}):\n${run.out()}\n${run.err()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopped(run: Run): Promise<number | null> {
  run.child.kill('SIGTERM');
  return run.exited;
}

describe('HTTPS and WSS', () => {
  let server: TestServer | undefined;
  const runs: Run[] = [];

  afterEach(async () => {
    await server?.close();
    server = undefined;
    for (const run of runs.splice(0)) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGKILL');
        await run.exited;
      }
    }
  });

  it('embedded with httpsOptions: HTTPS, WSS, and an https:// advertised URL', async () => {
    const pair = await makeTestCertificate();
    server = await startTestServer({}, { https: pair });
    const status = await httpsGet(`${server.baseUrl}/status`, pair.cert);
    expect(status.status).toBe(200);
    const body = JSON.parse(status.body) as { url: string; addresses: { url: string }[] };
    expect(body.url).toMatch(/^https:\/\//);
    expect(body.addresses.every((a) => a.url.startsWith('https://'))).toBe(true);
    const page = await httpsGet(`${server.baseUrl}/`, pair.cert);
    expect(page.body).toContain('<title>Live stack</title>');
    const client = await RecordingClient.connect(server.wsUrl, { ca: pair.cert });
    await client.waitFor((c) => c.count('hello') === 1);
    await server.notifier.notifyNewImage();
    await client.waitFor((c) => c.count('new_image') === 1);
    client.close();
  });

  it('plain HTTP on the HTTPS port gets a 400 that says to use https://, not an empty reply', async () => {
    const pair = await makeTestCertificate();
    server = await startTestServer({}, { https: pair });
    const port = server.port;
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/status', headers: { host: `192.168.1.20:${port}` } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.once('error', reject);
      req.end();
    });
    expect(reply.status).toBe(400);
    expect(reply.body).toContain(`https://192.168.1.20:${port}/`);
    // The port still speaks TLS to those who do.
    expect((await httpsGet(`${server.baseUrl}/status`, pair.cert)).status).toBe(200);
  });

  it('TLS_CERT_FILE / TLS_KEY_FILE: dist/main.js serves HTTPS and WSS on PORT', async () => {
    const temp = await makeTempFolder();
    const pair = await makeTestCertificate();
    await writeFile(join(temp.path, 'cert.pem'), pair.cert);
    await writeFile(join(temp.path, 'key.pem'), pair.key);
    const port = await freePort();
    const run = runService({
      PORT: String(port),
      WORK_FOLDER: join(temp.path, 'work'),
      TLS_CERT_FILE: join(temp.path, 'cert.pem'),
      TLS_KEY_FILE: join(temp.path, 'key.pem'),
    });
    runs.push(run);
    expect(await live(run)).toMatch(/^https:\/\/.+:\d+$/);
    const fingerprint = new X509Certificate(pair.cert).fingerprint256;
    expect(run.out()).toContain(`SHA-256 fingerprint ${fingerprint}`);
    const status = await httpsGet(`https://127.0.0.1:${port}/status`, pair.cert);
    expect(status.status).toBe(200);
    expect(status.peerFingerprint).toBe(fingerprint);
    const client = await RecordingClient.connect(`wss://127.0.0.1:${port}/ws`, { ca: pair.cert });
    await client.waitFor((c) => c.count('hello') === 1);
    client.close();
    expect(await stopped(run)).toBe(0);
    await temp.remove();
  });

  it('TLS_SELF_SIGNED=true: made once for this machine, kept in the work folder, the same after a restart', async () => {
    const temp = await makeTempFolder();
    const work = join(temp.path, 'work');
    const env = async (): Promise<Record<string, string>> => ({ PORT: String(await freePort()), WORK_FOLDER: work, TLS_SELF_SIGNED: 'true' });

    const first = runService(await env());
    runs.push(first);
    await live(first);
    const cert = await readFile(join(work, 'tls', 'self-signed-cert.pem'), 'utf8');
    const x509 = new X509Certificate(cert);
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(first.out()).toContain(`SHA-256 fingerprint ${x509.fingerprint256}`);
    const port1 = Number(/:(\d+)$/.exec(await live(first))![1]);
    // The kept certificate, given as the only CA, validates the connection (SAN 127.0.0.1).
    const client = await RecordingClient.connect(`wss://127.0.0.1:${port1}/ws`, { ca: cert });
    await client.waitFor((c) => c.count('hello') === 1);
    client.close();
    expect(await stopped(first)).toBe(0);

    const second = runService(await env());
    runs.push(second);
    const url = await live(second);
    expect(url).toMatch(/^https:\/\//);
    expect(second.out()).toContain(`SHA-256 fingerprint ${x509.fingerprint256}`);
    expect(second.out()).not.toContain('made a self-signed certificate');
    expect(await readFile(join(work, 'tls', 'self-signed-cert.pem'), 'utf8')).toBe(cert);
    const port2 = Number(/:(\d+)$/.exec(url)![1]);
    expect((await httpsGet(`https://127.0.0.1:${port2}/status`, cert)).status).toBe(200);
    expect(await stopped(second)).toBe(0);
    await temp.remove();
  });

  // Four processes that start and exit one after another: seconds each on a busy machine.
  it('a key that does not match the certificate, an unreadable file, or only one of the two: exit 1, one line', async () => {
    const temp = await makeTempFolder();
    const [a, b] = await Promise.all([makeTestCertificate('a'), makeTestCertificate('b')]);
    await writeFile(join(temp.path, 'cert.pem'), a.cert);
    await writeFile(join(temp.path, 'other-key.pem'), b.key);
    const cases: [Record<string, string>, RegExp][] = [
      [
        { TLS_CERT_FILE: join(temp.path, 'cert.pem'), TLS_KEY_FILE: join(temp.path, 'other-key.pem') },
        /^TLS_KEY_FILE=".*other-key\.pem" is invalid: it is not the private key of the certificate in TLS_CERT_FILE=".*cert\.pem"$/,
      ],
      [
        { TLS_CERT_FILE: join(temp.path, 'missing.pem'), TLS_KEY_FILE: join(temp.path, 'other-key.pem') },
        /^TLS_CERT_FILE=".*missing\.pem" is invalid: cannot read it \(ENOENT\)$/,
      ],
      [
        { TLS_CERT_FILE: join(temp.path, 'other-key.pem'), TLS_KEY_FILE: join(temp.path, 'other-key.pem') },
        /^TLS_CERT_FILE=".*other-key\.pem" is invalid: expected a PEM certificate$/,
      ],
      [{ TLS_CERT_FILE: join(temp.path, 'cert.pem') }, /^TLS_KEY_FILE=\(unset\) is invalid: expected the path of a PEM private key, together with TLS_CERT_FILE$/],
    ];
    for (const [tlsEnv, line] of cases) {
      const run = runService({ PORT: String(await freePort()), WORK_FOLDER: join(temp.path, 'work'), ...tlsEnv });
      runs.push(run);
      expect(await run.exited, run.err()).toBe(1);
      const lines = run.err().trim().split('\n');
      expect(lines, run.err()).toHaveLength(1);
      expect(lines[0]).toMatch(line);
      expect(run.err()).not.toContain('PRIVATE KEY');
    }
    await temp.remove();
  }, 120_000);
});
