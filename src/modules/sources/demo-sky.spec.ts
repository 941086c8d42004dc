import { describe, expect, it } from 'vitest';
import { DemoSky, seededRandom } from './demo-sky.js';

/** Root-mean-square difference between a frame and the noiseless sky: the noise left. */
function noise(frame: Buffer, clean: Buffer): number {
  let sum = 0;
  for (let i = 0; i < frame.length; i++) {
    sum += (frame[i] - clean[i]) ** 2;
  }
  return Math.sqrt(sum / frame.length);
}

describe('DemoSky', () => {
  const sky = new DemoSky({ width: 320, height: 240 });

  it('renders raw 8-bit RGB of its size', () => {
    expect(sky.frame(1).length).toBe(320 * 240 * 3);
  });

  it('has stars and a galaxy: bright points, and a centre brighter than the corners', () => {
    const frame = sky.frame(400);
    expect(frame.reduce((max, v) => Math.max(max, v), 0)).toBe(255);
    const at = (x: number, y: number): number => frame[(y * 320 + x) * 3 + 1];
    const centre = at(Math.round(320 * 0.56), Math.round(240 * 0.46));
    expect(centre).toBeGreaterThan(at(5, 5) + 40);
  });

  it('gets cleaner as frames accumulate: noise falls about as 1/√n', () => {
    const clean = sky.frame(1e12);
    const [one, sixteen, many] = [1, 16, 1024].map((n) => noise(sky.frame(n), clean));
    // √16 = 4 and √64 = 8 in linear terms; less after the display stretch and the clip at black.
    expect(sixteen).toBeLessThan(one / 2);
    expect(many).toBeLessThan(sixteen / 4);
    expect(many).toBeGreaterThan(0);
  });

  it('is the same sky at every run (seeded)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });
});
