/** A small, fast, seeded PRNG (mulberry32): the same sky at every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DemoSkyOptions {
  width?: number;
  height?: number;
  seed?: number;
  /** Noise of a single frame, as a fraction of full scale; frame n has noise / √n. */
  noise?: number;
}

/** Sky background level, as a fraction of full scale, before the stretch. */
const BACKGROUND = 0.03;
/** Steps of the display-stretch lookup table over [0, 1]. */
const STRETCH_STEPS = 4096;
/** Strength of the asinh display stretch: faint signal lifted, stars kept from clipping. */
const STRETCH = 12;

/**
 * A synthetic live stack: a fixed star field and a faint spiral galaxy, plus noise that
 * falls as 1/√n with the number of frames n, as in a real stack. Rendered in JS to a raw
 * 8-bit RGB buffer (sharp then encodes it); about 50 ms a frame at 1280x960, since the
 * noise comes from a table drawn once and read at a random offset each frame.
 */
export class DemoSky {
  readonly width: number;
  readonly height: number;
  private readonly noise: number;
  private readonly random: () => number;
  /** Linear RGB signal, interleaved, [0, 1] (stars may go above: they clip). */
  private readonly signal: Float32Array;
  private readonly gaussian: Float32Array;
  private readonly stretch: Uint8Array;

  constructor(options: DemoSkyOptions = {}) {
    this.width = options.width ?? 1280;
    this.height = options.height ?? 960;
    this.noise = options.noise ?? 0.12;
    this.random = seededRandom(options.seed ?? 20_240_601);
    this.signal = new Float32Array(this.width * this.height * 3).fill(BACKGROUND);
    this.addGalaxy();
    this.addStars();
    this.gaussian = this.gaussianTable(this.signal.length + 65_537);
    this.stretch = stretchTable();
  }

  /** The stack after `frames` frames (≥ 1), as raw interleaved 8-bit RGB. */
  frame(frames: number): Buffer {
    const sigma = this.noise / Math.sqrt(Math.max(1, frames));
    const out = Buffer.alloc(this.signal.length);
    const table = this.gaussian;
    // A random offset into the table gives each frame its own grain at no cost.
    const offset = Math.floor(this.random() * (table.length - this.signal.length));
    const top = STRETCH_STEPS - 1;
    for (let i = 0; i < out.length; i++) {
      const v = this.signal[i] + sigma * table[offset + i];
      const step = v <= 0 ? 0 : v >= 1 ? top : (v * top) | 0;
      out[i] = this.stretch[step];
    }
    return out;
  }

  /** A tilted exponential disk with a bulge and two logarithmic spiral arms. */
  private addGalaxy(): void {
    const { width, height, signal } = this;
    const cx = width * 0.56;
    const cy = height * 0.46;
    const scale = Math.min(width, height) * 0.42;
    const tilt = 0.5;
    const axisRatio = 0.45;
    const cos = Math.cos(tilt);
    const sin = Math.sin(tilt);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const dx = (x - cx) / scale;
        const dy = (y - cy) / scale;
        const u = dx * cos + dy * sin;
        const v = (-dx * sin + dy * cos) / axisRatio;
        const r = Math.sqrt(u * u + v * v);
        if (r > 1.6) {
          continue;
        }
        const theta = Math.atan2(v, u);
        const arms = 1 + 0.55 * Math.cos(2 * theta - 5 * Math.log(r + 0.05));
        const bulge = 0.3 * Math.exp(-r / 0.06);
        const disk = 0.09 * Math.exp(-r / 0.28) * arms;
        const i = (y * width + x) * 3;
        // Yellowish old core, bluer young arms.
        signal[i] += bulge * 1.0 + disk * 0.82;
        signal[i + 1] += bulge * 0.9 + disk * 0.88;
        signal[i + 2] += bulge * 0.7 + disk * 1.0;
      }
    }
  }

  /** Stars with a power-law brightness (few bright, many faint), Gaussian profiles and a colour tint. */
  private addStars(): void {
    const { width, height, signal, random } = this;
    const tints = [
      [1.0, 0.78, 0.6],
      [1.0, 0.92, 0.82],
      [1.0, 1.0, 1.0],
      [0.8, 0.88, 1.0],
    ];
    const count = Math.round((width * height) / 800);
    for (let s = 0; s < count; s++) {
      const x0 = random() * width;
      const y0 = random() * height;
      const peak = 0.04 + 2.5 * Math.pow(random(), 9);
      const sigma = 0.8 + 0.9 * Math.pow(random(), 3) + Math.min(1.2, peak * 0.4);
      const tint = tints[Math.floor(random() * tints.length)];
      const reach = Math.ceil(sigma * 3.5);
      for (let y = Math.max(0, Math.floor(y0) - reach); y <= Math.min(height - 1, Math.floor(y0) + reach); y++) {
        for (let x = Math.max(0, Math.floor(x0) - reach); x <= Math.min(width - 1, Math.floor(x0) + reach); x++) {
          const d2 = (x - x0) ** 2 + (y - y0) ** 2;
          const value = peak * Math.exp(-d2 / (2 * sigma * sigma));
          const i = (y * width + x) * 3;
          signal[i] += value * tint[0];
          signal[i + 1] += value * tint[1];
          signal[i + 2] += value * tint[2];
        }
      }
    }
  }

  /** Standard normal samples (Box–Muller). */
  private gaussianTable(length: number): Float32Array {
    const table = new Float32Array(length);
    for (let i = 0; i < length; i += 2) {
      const u = 1 - this.random();
      const v = this.random();
      const m = Math.sqrt(-2 * Math.log(u));
      table[i] = m * Math.cos(2 * Math.PI * v);
      if (i + 1 < length) {
        table[i + 1] = m * Math.sin(2 * Math.PI * v);
      }
    }
    return table;
  }
}

/** asinh stretch of [0, 1] to 8 bits, as astro viewers display linear data. */
function stretchTable(): Uint8Array {
  const table = new Uint8Array(STRETCH_STEPS);
  const norm = Math.asinh(STRETCH);
  for (let i = 0; i < STRETCH_STEPS; i++) {
    table[i] = Math.round((255 * Math.asinh((STRETCH * i) / (STRETCH_STEPS - 1))) / norm);
  }
  return table;
}
