import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { averageColour, makeJpeg, type Colour } from '../helpers/images.js';
import { MAIN, spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { FileStorage } from '../../src/modules/web-assets/file-storage.repository.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** A colour per stack size, far enough apart that a JPEG's rounding cannot confuse two. */
function colourOf(n: number): Colour {
  return { r: (n * 53) % 256, g: (n * 97 + 40) % 256, b: (n * 29 + 80) % 256 };
}

function near(a: Colour, b: Colour): boolean {
  return Math.abs(a.r - b.r) <= 8 && Math.abs(a.g - b.g) <= 8 && Math.abs(a.b - b.b) <= 8;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface DataJson {
  STACK_SIZE: number;
  EXPO: string;
  UPDATED: string | null;
  IMAGE_SHA256: string;
  VERSION?: number | null;
}

async function readData(folder: string): Promise<DataJson> {
  return JSON.parse(await readFile(join(folder, 'data.json'), 'utf8')) as DataJson;
}

async function publish(baseUrl: string, jpeg: Buffer, stackSize: number): Promise<number> {
  const res = await fetch(`${baseUrl}/api/image?stackSize=${stackSize}&exposure=${stackSize * 10}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'image/jpeg' },
    body: new Uint8Array(jpeg),
  });
  await res.arrayBuffer();
  return res.status;
}

async function served(baseUrl: string): Promise<{ image: Buffer; data: DataJson; status: { stackSize: number; exposure: string } }> {
  const image = Buffer.from(await (await fetch(`${baseUrl}/web_image.jpg`)).arrayBuffer());
  const data = (await (await fetch(`${baseUrl}/data.json`)).json()) as DataJson;
  const status = (await (await fetch(`${baseUrl}/status`)).json()) as { stackSize: number; exposure: string };
  return { image, data, status };
}

describe('restarts keep the session (RESUME)', () => {
  let servers: TestServer[] = [];
  let temps: { remove(): Promise<void> }[] = [];

  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all(temps.map((t) => t.remove()));
    servers = [];
    temps = [];
  });

  async function folder(): Promise<string> {
    const temp = await makeTempFolder();
    temps.push(temp);
    return join(temp.path, 'work');
  }

  async function start(workFolder: string, resume?: 'auto' | 'always' | 'never'): Promise<TestServer> {
    const server = await startTestServer({ workFolder, ...(resume ? { resume } : {}) });
    servers.push(server);
    return server;
  }

  it('a new process keeps the image, STACK_SIZE, EXPO, VERSION and other keys of the last run', async () => {
    const work = await folder();
    const first = await start(work);
    const jpeg = await makeJpeg({ color: colourOf(7) });
    await first.notifier.publish(jpeg, { stackSize: 7, exposureSeconds: 3725 });
    await first.close();
    // Another feature's key in data.json is carried over, not wiped.
    const data = await readData(work);
    expect(data.VERSION).toBe(1);
    await writeFile(join(work, 'data.json'), JSON.stringify({ ...data, OTHER_FEATURE: 'kept' }));

    const second = await start(work);
    const { image, data: after, status } = await served(second.baseUrl);
    expect(image.equals(jpeg)).toBe(true);
    expect(status).toMatchObject({ stackSize: 7, exposure: '1:02:05' });
    expect(after).toMatchObject({ STACK_SIZE: 7, EXPO: '1:02:05', VERSION: 1, OTHER_FEATURE: 'kept', UPDATED: data.UPDATED });
    expect(status).toMatchObject({ version: 1 });
    // The next publish carries on from there.
    await second.notifier.publish(await makeJpeg({ color: colourOf(8) }), { stackSize: 8 });
    expect(await readData(work)).toMatchObject({ STACK_SIZE: 8, EXPO: '1:02:05', VERSION: 2, OTHER_FEATURE: 'kept' });
  });

  it('a resumed image whose pyramid is gone has no version (viewers get web_image.jpg); the numbering carries on', async () => {
    const work = await folder();
    const first = await start(work);
    const jpeg = await makeJpeg({ color: colourOf(5) });
    await first.notifier.publish(jpeg, { stackSize: 5 });
    await first.close();
    await rm(join(work, 'v', '1'), { recursive: true });

    const second = await start(work);
    const { image, data, status } = await served(second.baseUrl);
    expect(image.equals(jpeg)).toBe(true);
    expect(data).toMatchObject({ STACK_SIZE: 5, VERSION: null });
    expect(status).toMatchObject({ stackSize: 5, version: null });
    await second.notifier.publish(await makeJpeg({ color: colourOf(6) }));
    expect(await readData(work)).toMatchObject({ VERSION: 2 });
  });

  it('RESUME=never: the waiting image and zeros without a version; other keys and the numbering carry on', async () => {
    const work = await folder();
    const first = await start(work);
    const jpeg = await makeJpeg({ color: colourOf(3) });
    await first.notifier.publish(jpeg, { stackSize: 3, exposureSeconds: 30 });
    await first.close();
    await writeFile(join(work, 'data.json'), JSON.stringify({ ...(await readData(work)), OTHER_FEATURE: 'kept' }));

    const second = await start(work, 'never');
    const { image, data, status } = await served(second.baseUrl);
    expect(image.equals(jpeg)).toBe(false);
    expect(status).toMatchObject({ stackSize: 0, exposure: '0:00:00' });
    expect(data).toMatchObject({ STACK_SIZE: 0, EXPO: '0:00:00', UPDATED: null, VERSION: null, OTHER_FEATURE: 'kept' });
    await second.notifier.publish(await makeJpeg({ color: colourOf(4) }));
    expect(await readData(work)).toMatchObject({ VERSION: 2 });
  });

  it('RESUME=auto: a last image over 12 hours old gives the waiting image; RESUME=always keeps it', async () => {
    const work = await folder();
    const first = await start(work);
    const jpeg = await makeJpeg({ color: colourOf(5) });
    await first.notifier.publish(jpeg, { stackSize: 5, exposureSeconds: 50 });
    await first.close();
    const old = { ...(await readData(work)), UPDATED: new Date(Date.now() - 13 * 3600 * 1000).toISOString() };
    await writeFile(join(work, 'data.json'), JSON.stringify(old));

    const always = await start(work, 'always');
    expect((await served(always.baseUrl)).image.equals(jpeg)).toBe(true);
    expect((await served(always.baseUrl)).status.stackSize).toBe(5);
    await always.close();

    const auto = await start(work);
    const { image, status } = await served(auto.baseUrl);
    expect(image.equals(jpeg)).toBe(false);
    expect(status.stackSize).toBe(0);
  });

  it('a kill between the two renames (new image, old data.json): START goes back to the complete pair before', async () => {
    const work = await folder();
    const first = await start(work);
    const a = await makeJpeg({ color: colourOf(1) });
    const b = await makeJpeg({ color: colourOf(2) });
    await first.notifier.publish(a, { stackSize: 1 });
    await first.notifier.publish(b, { stackSize: 2 });
    await first.close();
    // What a kill right after the image's rename leaves: b kept aside (the publish's first
    // step), the next image in place, data.json still b's.
    const c = await makeJpeg({ color: colourOf(3) });
    await writeFile(join(work, '.web_image.previous.jpg'), b);
    await writeFile(join(work, 'web_image.jpg'), c);

    const second = await start(work);
    const { image, data, status } = await served(second.baseUrl);
    expect(image.equals(b)).toBe(true);
    expect(status.stackSize).toBe(2);
    expect(data.IMAGE_SHA256).toBe(sha256(b));
    expect((await readFile(join(work, 'web_image.jpg'))).equals(b)).toBe(true);
  });

  it('an image that data.json does not name, and no kept image that it does: the waiting image, never a mixed pair', async () => {
    const work = await folder();
    const first = await start(work);
    await first.notifier.publish(await makeJpeg({ color: colourOf(1) }), { stackSize: 1 });
    await first.close();
    const stranger = await makeJpeg({ color: colourOf(9) });
    await writeFile(join(work, 'web_image.jpg'), stranger);

    const second = await start(work);
    const { image, status } = await served(second.baseUrl);
    expect(image.equals(stranger)).toBe(false);
    expect(status.stackSize).toBe(0);
  });

  it('a damaged data.json beside the image keeps the image (metrics unknown: 0), never the waiting image', async () => {
    const work = await folder();
    const first = await start(work);
    const jpeg = await makeJpeg({ color: colourOf(6) });
    await first.notifier.publish(jpeg, { stackSize: 6, exposureSeconds: 60 });
    await first.close();
    await writeFile(join(work, 'data.json'), '{"STACK_SIZE": 6, "EXPO": "0:01:0');

    const second = await start(work);
    const { image, data, status } = await served(second.baseUrl);
    expect(image.equals(jpeg)).toBe(true);
    expect(status.stackSize).toBe(0);
    expect(data.IMAGE_SHA256).toBe(sha256(jpeg));
    await second.close();
    // RESUME=never still means never.
    await writeFile(join(work, 'data.json'), 'not json');
    const third = await start(work, 'never');
    expect((await served(third.baseUrl)).image.equals(jpeg)).toBe(false);
  });

  it('other features\' data.json keys are carried over up to 16 KiB in all, never a megabyte to every phone', async () => {
    const work = await folder();
    const first = await start(work);
    await first.notifier.publish(await makeJpeg({ color: colourOf(2) }), { stackSize: 2 });
    await first.close();
    const huge = 'x'.repeat(1024 * 1024);
    await writeFile(join(work, 'data.json'), JSON.stringify({ ...(await readData(work)), SMALL: 'kept', HUGE: huge }));

    const second = await start(work);
    const served_ = await fetch(`${second.baseUrl}/data.json`);
    const body = await served_.text();
    expect(body.length).toBeLessThan(17 * 1024);
    expect(JSON.parse(body)).toMatchObject({ STACK_SIZE: 2, SMALL: 'kept' });
    expect(JSON.parse(body)).not.toHaveProperty('HUGE');
  });

  it('stale temp files are removed at START whatever their PID (this one too: a container restarts as PID 1)', async () => {
    const work = await folder();
    const first = await start(work);
    await first.close();
    const ours = `.web_image.jpg.${process.pid}.0123456789ab.tmp`;
    const dead = '.data.json.999999.abcdef012345.tmp';
    const notOurs = '.keep.me.tmp';
    for (const name of [ours, dead, notOurs]) {
      await writeFile(join(work, name), 'x');
    }
    await start(work);
    const names = await readdir(work);
    expect(names).not.toContain(ours);
    expect(names).not.toContain(dead);
    expect(names).toContain(notOurs);
  });
});

/**
 * The filesystem as a kill -9 at each step would leave it: once armed, a copy of `folder`
 * is taken before and after every rename of the image, data.json or the image kept aside
 * (the steps a restart can tell apart; temp files are cleared at START).
 */
const PAIR_FILES = ['web_image.jpg', 'data.json', '.web_image.previous.jpg'];

class SnapshotStorage extends FileStorage {
  armed = false;
  readonly taken: string[] = [];

  constructor(
    private readonly folder: string,
    private readonly into: string,
  ) {
    super();
  }

  override async rename(from: string, to: string): Promise<void> {
    const watched = this.armed && PAIR_FILES.some((name) => to === join(this.folder, name));
    if (watched) {
      await this.snapshot();
    }
    await super.rename(from, to);
    if (watched) {
      await this.snapshot();
    }
  }

  private async snapshot(): Promise<void> {
    const copy = join(this.into, `step-${this.taken.length}`);
    await cp(this.folder, copy, { recursive: true });
    this.taken.push(copy);
  }
}

describe('a kill at each step of a publish and of the resume that follows (deterministic)', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup();
    }
  });

  async function startOn(workFolder: string, storage?: FileStorage): Promise<TestServer> {
    const server = await startTestServer({ workFolder }, { storage });
    cleanups.push(() => server.close());
    return server;
  }

  /** What a restart on `folder` serves: one complete pair, image b (stack 2) or c (stack 3). */
  async function expectOnePair(folder: string, pairs: Map<number, Buffer>): Promise<number> {
    const server = await startOn(folder);
    const { image, data, status } = await served(server.baseUrl);
    const expected = pairs.get(status.stackSize);
    expect(expected, `stack ${status.stackSize} is not one of the published pairs`).toBeDefined();
    expect(image.equals(expected!)).toBe(true);
    expect(data.STACK_SIZE).toBe(status.stackSize);
    expect(data.IMAGE_SHA256).toBe(sha256(image));
    await server.close();
    return status.stackSize;
  }

  it('every step of the first publish leaves the waiting image (stack 0) or the first image, never the first image with stack 0', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const work = join(temp.path, 'work');
    const storage = new SnapshotStorage(work, join(temp.path, 'first'));
    const server = await startOn(work, storage);
    const waiting = (await served(server.baseUrl)).image;
    const a = await makeJpeg({ color: colourOf(1), width: 120 });
    storage.armed = true;
    await server.notifier.publish(a, { stackSize: 1 });
    storage.armed = false;
    await server.close();
    expect(storage.taken.length).toBeGreaterThan(0);
    const seen = new Set<number>();
    for (const step of storage.taken) {
      seen.add(await expectOnePair(step, new Map([[0, waiting], [1, a]])));
    }
    expect([...seen].sort()).toEqual([0, 1]);
  }, 120_000);

  it('every step of publish c after b, and every step of the START that repairs a cut, leaves one complete pair', async () => {
    const temp = await makeTempFolder();
    cleanups.push(() => temp.remove());
    const work = join(temp.path, 'work');
    const storage = new SnapshotStorage(work, join(temp.path, 'publish'));
    const server = await startOn(work, storage);
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => makeJpeg({ color: colourOf(n), width: 96 + n * 40 })));
    await server.notifier.publish(a, { stackSize: 1 });
    await server.notifier.publish(b, { stackSize: 2 });
    storage.armed = true;
    await server.notifier.publish(c, { stackSize: 3 });
    storage.armed = false;
    await server.close();

    const pairs = new Map([[2, b], [3, c]]);
    const cuts: string[] = [];
    for (const step of storage.taken) {
      const onDisk = await readFile(join(step, 'web_image.jpg'));
      if (onDisk.equals(c) && (await readData(step)).STACK_SIZE === 2) {
        cuts.push(step); // the new image renamed, data.json not yet
      }
      const copy = `${step}-restart`;
      await cp(step, copy, { recursive: true });
      await expectOnePair(copy, pairs);
    }
    // The publish was stopped at least once between its two renames.
    expect(cuts.length).toBeGreaterThan(0);

    // The START that repairs a cut, killed at each of its own steps, then started again.
    const repair = new SnapshotStorage(cuts[0], join(temp.path, 'repair'));
    repair.armed = true;
    const repairing = await startOn(cuts[0], repair);
    repair.armed = false;
    expect((await served(repairing.baseUrl)).status.stackSize).toBe(2);
    await repairing.close();
    expect(repair.taken.length).toBeGreaterThan(0);
    for (const step of repair.taken) {
      expect(await expectOnePair(step, pairs)).toBe(2);
    }
    console.log(`kill at each step: ${storage.taken.length} publish steps (${cuts.length} between the two renames), ${repair.taken.length} repair steps`);
  }, 180_000);
});

describe('kill -9 in the middle of publishing, then restart (the built service)', () => {
  let service: SpawnedService | undefined;

  beforeAll(() => {
    expect(existsSync(MAIN), 'dist/main.js: run `npm run build` first (npm test does)').toBe(true);
  });

  afterEach(async () => {
    await service?.kill('SIGKILL');
    service = undefined;
  });

  it('×20: files intact, the session resumed, image and data.json from one publish', async () => {
    const temp = await makeTempFolder();
    const work = join(temp.path, 'work');
    const images = new Map<number, Buffer>();
    const imageOf = async (n: number): Promise<Buffer> => {
      const known = images.get(n);
      if (known) {
        return known;
      }
      // Sizes vary so some writes take longer than others.
      const made = await makeJpeg({ color: colourOf(n), width: 64 + (n % 5) * 150, height: 48 + (n % 3) * 120 });
      images.set(n, made);
      return made;
    };
    let acked = 0;
    let sent = 0;
    let restoredPairs = 0;
    for (let round = 0; round < 20; round++) {
      service = await spawnService({ WORK_FOLDER: work });
      const { baseUrl } = service;
      // Resumed: what the last acknowledged publish (or a later one that landed) left.
      const before = await served(baseUrl);
      if (round > 0) {
        expect(before.status.stackSize).toBeGreaterThanOrEqual(acked);
        expect(before.status.stackSize).toBeLessThanOrEqual(sent);
        if (before.status.stackSize === 0) {
          // The first publish was cut before its data.json (a slow first publish, a quick kill):
          // nothing ever landed, so the waiting image, never the cut publish's image.
          expect(acked).toBe(0);
          expect(before.data.UPDATED).toBeNull();
        } else {
          expect(before.image.equals(await imageOf(before.status.stackSize))).toBe(true);
          expect(near(await averageColour(before.image), colourOf(before.status.stackSize))).toBe(true);
        }
        expect(before.data.IMAGE_SHA256).toBe(sha256(before.image));
        const leftovers = (await readdir(work)).filter((name) => name.endsWith('.tmp'));
        expect(leftovers).toEqual([]);
        if (service.stdout().includes('cut between its two files')) {
          restoredPairs += 1;
        }
      }
      // Publish in a loop until a SIGKILL at a random moment.
      let n = before.status.stackSize;
      const killAfter = 30 + Math.random() * 400;
      const killed = new Promise<void>((resolve) => setTimeout(resolve, killAfter));
      let stop = false;
      const loop = (async () => {
        while (!stop) {
          n += 1;
          sent = n;
          try {
            if ((await publish(baseUrl, await imageOf(n), n)) === 200) {
              acked = n;
            }
          } catch {
            return; // the connection died with the process
          }
        }
      })();
      await killed;
      stop = true;
      await service.kill('SIGKILL');
      await loop;
      service = undefined;
    }
    // How many of the 20 kills fell between the two renames varies; the log says which.
    console.log(`kill -9 x20: last acknowledged stack ${acked}, ${restoredPairs} restart(s) went back to the pair before a cut publish`);
    await temp.remove();
  }, 240_000);
});
