// Synthetic live-stack JPEGs for the benches and tests: a sky background with a gradient, a
// fractal nebula, a few thousand stars (Gaussian PSFs) and per-pixel sky noise, so the
// encoder sees what it sees in a real stretched stack. Variants share the field (same
// nebula and stars) and differ in noise and seeing, like successive stacks of one night.
import sharp from 'sharp';

function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/** The smooth part (sky gradient + nebula) as raw RGB at full size; made at 1/4 scale, upscaled. */
async function renderBase(width, height, random) {
  const w = Math.ceil(width / 4);
  const h = Math.ceil(height / 4);
  const octaves = [6, 12, 24, 48, 96].map((cells, i) => {
    const gw = cells + 1;
    const gh = Math.ceil((cells * h) / w) + 1;
    return { gw, gh, amp: 0.55 ** i, grid: Float32Array.from({ length: gw * gh }, random) };
  });
  const sample = ({ gw, gh, grid }, u, v) => {
    const x = u * (gw - 1);
    const y = v * (gh - 1);
    const x0 = Math.min(gw - 2, Math.floor(x));
    const y0 = Math.min(gh - 2, Math.floor(y));
    const fx = x - x0;
    const fy = y - y0;
    const sx = fx * fx * (3 - 2 * fx);
    const sy = fy * fy * (3 - 2 * fy);
    const a = grid[y0 * gw + x0] * (1 - sx) + grid[y0 * gw + x0 + 1] * sx;
    const b = grid[(y0 + 1) * gw + x0] * (1 - sx) + grid[(y0 + 1) * gw + x0 + 1] * sx;
    return a * (1 - sy) + b * sy;
  };
  const cx = 0.45 + random() * 0.1;
  const cy = 0.45 + random() * 0.1;
  const small = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x / (w - 1);
      const v = y / (h - 1);
      let f = 0;
      for (const o of octaves) {
        f += o.amp * sample(o, u, v);
      }
      f /= 2.1;
      const r2 = ((u - cx) / 0.32) ** 2 + ((v - cy) / 0.26) ** 2;
      const envelope = Math.exp(-r2);
      const neb = Math.max(0, f - 0.35) * 2.2 * envelope;
      const core = Math.exp(-r2 * 6) * Math.max(0, f - 0.25);
      const sky = 18 + 10 * u + 6 * v;
      const i = (y * w + x) * 3;
      small[i] = Math.min(255, sky + 170 * neb + 60 * core);
      small[i + 1] = Math.min(255, sky + 2 + 55 * neb + 90 * core);
      small[i + 2] = Math.min(255, sky + 6 + 80 * neb * (1 - envelope) + 70 * core);
    }
  }
  return sharp(small, { raw: { width: w, height: h, channels: 3 } }).resize(width, height, { kernel: 'cubic' }).raw().toBuffer();
}

function makeStars(width, height, random, count) {
  return Array.from({ length: count }, () => {
    const bright = random() ** 6;
    return {
      x: random() * width,
      y: random() * height,
      peak: 30 + 225 * bright,
      sigma: 0.7 + 2.6 * bright,
      tint: [1, 0.95 + random() * 0.1, 0.85 + random() * 0.3],
    };
  });
}

function drawVariant(base, width, height, stars, noise, seed) {
  const random = rng(seed);
  const out = new Uint8ClampedArray(base.length);
  // Sky noise: triangular distribution of width `noise`, per channel.
  for (let i = 0; i < base.length; i++) {
    out[i] = base[i] + (random() + random() - 1) * noise;
  }
  const seeing = 0.9 + random() * 0.3;
  for (const s of stars) {
    const sigma = s.sigma * seeing;
    const rad = Math.ceil(sigma * 3);
    const x0 = Math.max(0, Math.floor(s.x - rad));
    const x1 = Math.min(width - 1, Math.ceil(s.x + rad));
    const y0 = Math.max(0, Math.floor(s.y - rad));
    const y1 = Math.min(height - 1, Math.ceil(s.y + rad));
    const k = -1 / (2 * sigma * sigma);
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const g = s.peak * Math.exp(((x - s.x) ** 2 + (y - s.y) ** 2) * k);
        const i = (y * width + x) * 3;
        out[i] += g * s.tint[0];
        out[i + 1] += g * s.tint[1];
        out[i + 2] += g * s.tint[2];
      }
    }
  }
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}

const encode = (raw, width, height) => sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();

/**
 * A star field of `width` x `height` whose JPEG weighs about `targetBytes`; `variant(i)`
 * renders the i-th stack of it (new noise and seeing each time, same field).
 */
export async function makeAstroField({ width = 4000, height = 3000, targetBytes = 3 * 1024 * 1024, seed = 42 } = {}) {
  const random = rng(seed);
  const base = await renderBase(width, height, random);
  const stars = makeStars(width, height, random, Math.round((width * height) / 3000));
  // JPEG size grows about linearly with the noise amplitude here: two corrections.
  let noise = 14;
  let jpeg = await encode(drawVariant(base, width, height, stars, noise, seed + 1), width, height);
  for (let i = 0; i < 2 && Math.abs(jpeg.length - targetBytes) / targetBytes > 0.05; i++) {
    const floor = 0.25 * jpeg.length;
    noise = Math.max(1, Math.min(80, (noise * (targetBytes - floor)) / (jpeg.length - floor)));
    jpeg = await encode(drawVariant(base, width, height, stars, noise, seed + 1), width, height);
  }
  return {
    width,
    height,
    noise,
    variant: (i) => encode(drawVariant(base, width, height, stars, noise, seed + 100 + i), width, height),
  };
}

/**
 * One synthetic stack as a JPEG (quality 90), the way a stacker saves it, without size
 * calibration: the nebula is the same for every `seed`, stars and noise are the seed's own.
 */
export async function makeAstroJpeg(width = 4000, height = 3000, seed = 1) {
  const base = await renderBase(width, height, rng(42));
  const stars = makeStars(width, height, rng(seed * 7919), Math.round((width * height) / 3000));
  return encode(drawVariant(base, width, height, stars, 14, seed + 1), width, height);
}

/**
 * The samples of a linear 16-bit stack (interleaved, top row first) as a camera's stack is
 * before any stretch: a sky at 3 % of full scale with noise and a few stars (0.2 % of pixels
 * at 70 %), what the auto-stretch is for; `seed` changes the noise and the stars.
 */
export function linearSky(width, height, channels = 1, seed = 3) {
  const data = new Uint16Array(width * height * channels);
  let state = seed;
  for (let i = 0; i < data.length; i++) {
    state = (state * 16807) % 2147483647;
    const u = state / 2147483647;
    data[i] = Math.round((u < 0.002 ? 0.7 : 0.03 + (u - 0.5) * 0.01) * 65535);
  }
  return data;
}
