import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { httpsGet } from '../helpers/tls-cert.js';

const DAY = 24 * 3600 * 1000;

async function until(check: () => boolean, what: string, output: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('TLS_CERT_FILE: a certificate phones will refuse is named at START', () => {
  let temp: { path: string; remove(): Promise<void> };
  let run: ReturnType<typeof runService> | undefined;

  beforeAll(async () => {
    temp = await makeTempFolder('stackcast-cert-');
  });

  afterAll(async () => {
    if (run && run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    await temp.remove();
  });

  it('warns that an expired certificate for another host expired on its date and does not name the advertised address, and serves anyway', async () => {
    const now = Date.now();
    const pems = await generate([{ name: 'commonName', value: 'other.example' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 400 * DAY),
      notAfterDate: new Date(now - 3 * DAY),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'other.example' }] }],
    });
    await writeFile(join(temp.path, 'cert.pem'), pems.cert);
    await writeFile(join(temp.path, 'key.pem'), pems.private);
    const port = await freePort();
    run = runService({
      PORT: String(port),
      WORK_FOLDER: join(temp.path, 'work'),
      DISPLAYED_ADDRESS: 'ip:127.0.0.1',
      TLS_CERT_FILE: join(temp.path, 'cert.pem'),
      TLS_KEY_FILE: join(temp.path, 'key.pem'),
    });
    const output = (): string => run!.out() + run!.err();
    await until(() => /the certificate names other\.example/.test(output()), 'the warning about the names', output);
    const expiry = new Date(Math.floor((now - 3 * DAY) / 1000) * 1000).toISOString();
    expect(output()).toContain(`the certificate expired on ${expiry}`);
    expect(output()).toContain('the certificate names other.example, which do not include the advertised address 127.0.0.1');
    // A warning, not a refusal: HTTPS is served (a client that ignores the dates and the name gets in).
    expect(run.child.exitCode).toBeNull();
    const status = await httpsGet(`https://127.0.0.1:${port}/status`, pems.cert).catch((err: Error) => err);
    expect(status).toBeInstanceOf(Error);
    expect((status as NodeJS.ErrnoException).code).toBe('CERT_HAS_EXPIRED');
  });
});
