// A deterministic synthetic deep-sky stack: sky gradient, sensor noise, a nebula with
// structure at every scale and a few thousand stars with soft profiles. An encoder sees
// it the way it sees a real stretched stack (flat colour would flatter every format).
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

/** Smooth value noise summed over octaves, at low resolution (upsampled by sharp later). */
function nebulaField(w, h, random) {
  const out = new Float32Array(w * h);
  for (let octave = 0, cell = 64, amp = 1; octave < 5; octave++, cell /= 2, amp *= 0.55) {
    const gw = Math.ceil(w / cell) + 2;
    const gh = Math.ceil(h / cell) + 2;
    const grid = Float32Array.from({ length: gw * gh }, () => random());
    for (let y = 0; y < h; y++) {
      const gy = y / cell;
      const y0 = Math.floor(gy);
      const fy = gy - y0;
      const sy = fy * fy * (3 - 2 * fy);
      for (let x = 0; x < w; x++) {
        const gx = x / cell;
        const x0 = Math.floor(gx);
        const fx = gx - x0;
        const sx = fx * fx * (3 - 2 * fx);
        const a = grid[y0 * gw + x0];
        const b = grid[y0 * gw + x0 + 1];
        const c = grid[(y0 + 1) * gw + x0];
        const d = grid[(y0 + 1) * gw + x0 + 1];
        out[y * w + x] += amp * ((a * (1 - sx) + b * sx) * (1 - sy) + (c * (1 - sx) + d * sx) * sy);
      }
    }
  }
  return out;
}

/**
 * Raw RGB pixels (width × height × 3) of a synthetic stack; `seed` changes noise and stars,
 * so two seeds are two different publishes of the same target.
 */
export async function renderAstro(width = 4000, height = 3000, seed = 1) {
  const random = rng(seed * 7919);
  // The nebula at 1/8 scale, upsampled smoothly: structure without per-pixel cost.
  const lw = Math.ceil(width / 8);
  const lh = Math.ceil(height / 8);
  const field = nebulaField(lw, lh, rng(42));
  const low = Buffer.alloc(lw * lh * 3);
  for (let y = 0; y < lh; y++) {
    for (let x = 0; x < lw; x++) {
      const dx = (x / lw - 0.52) / 0.32;
      const dy = (y / lh - 0.5) / 0.26;
      const envelope = Math.exp(-(dx * dx + dy * dy));
      const v = Math.max(0, field[y * lw + x] - 0.9) * envelope;
      const i = (y * lw + x) * 3;
      low[i] = Math.min(255, 18 + v * 210);
      low[i + 1] = Math.min(255, 16 + v * 70);
      low[i + 2] = Math.min(255, 26 + v * 120);
    }
  }
  const pixels = await sharp(low, { raw: { width: lw, height: lh, channels: 3 } })
    .resize(width, height, { kernel: 'cubic' })
    .raw()
    .toBuffer();
  // Sensor noise, a little stronger in the faint parts, as in a stretched stack.
  for (let i = 0; i < pixels.length; i++) {
    const n = (random() + random() + random() - 1.5) * 14;
    pixels[i] = Math.max(0, Math.min(255, pixels[i] + n));
  }
  const stars = Math.round((width * height) / 3000);
  for (let s = 0; s < stars; s++) {
    const cx = random() * width;
    const cy = random() * height;
    const bright = random() ** 6;
    const sigma = 0.7 + bright * 3.5;
    const peak = 60 + bright * 195;
    const tint = [1, 0.9 + random() * 0.1, 0.75 + random() * 0.25];
    const r = Math.ceil(sigma * 3);
    for (let y = Math.max(0, Math.floor(cy - r)); y <= Math.min(height - 1, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(width - 1, cx + r); x++) {
        const d2 = (x - cx) ** 2 + (y - cy) ** 2;
        const v = peak * Math.exp(-d2 / (2 * sigma * sigma));
        const i = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) {
          pixels[i + c] = Math.min(255, pixels[i + c] + v * tint[c]);
        }
      }
    }
  }
  return { pixels, width, height };
}

/** The synthetic stack as a JPEG, the way a stacker saves it (quality 90). */
export async function makeAstroJpeg(width = 4000, height = 3000, seed = 1) {
  const { pixels } = await renderAstro(width, height, seed);
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}
