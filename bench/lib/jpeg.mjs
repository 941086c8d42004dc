// The bench's test images: deterministic JPEGs of about `targetBytes` (3 MB by
// default), a gradient with grain the way a stretched deep-sky stack looks to an encoder.
import sharp from 'sharp';

function render(width, height, seed) {
  const pixels = Buffer.alloc(width * height * 3);
  let x = seed >>> 0 || 1;
  for (let y = 0; y < height; y++) {
    for (let col = 0; col < width; col++) {
      // xorshift32: fast, deterministic grain
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const grain = (x & 0xff) - 128;
      const base = 40 + ((col + y + seed) % 160);
      const i = (y * width + col) * 3;
      pixels[i] = Math.max(0, Math.min(255, base + (grain >> 1)));
      pixels[i + 1] = Math.max(0, Math.min(255, base - 10 + (grain >> 1)));
      pixels[i + 2] = Math.max(0, Math.min(255, base + 20 + (grain >> 2)));
    }
  }
  return pixels;
}

async function encode(width, height, seed) {
  return sharp(render(width, height, seed), { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** Two different JPEGs (seeds) of about `targetBytes` each, within a few percent. */
export async function makeTestJpegs(targetBytes = 3 * 1024 * 1024) {
  let width = 1600;
  let height = 1200;
  let jpeg = await encode(width, height, 1);
  // Size grows with the pixel count: two corrections land within a few percent.
  for (let i = 0; i < 3 && Math.abs(jpeg.length - targetBytes) / targetBytes > 0.03; i++) {
    const scale = Math.sqrt(targetBytes / jpeg.length);
    width = Math.round(width * scale);
    height = Math.round(height * scale);
    jpeg = await encode(width, height, 1);
  }
  return { images: [jpeg, await encode(width, height, 7)], width, height };
}

/** A deterministic stretched-stack look (gradient, grain) at q90, as a stacker saves it. */
export async function makeStackJpeg(width, height, seed) {
  const pixels = Buffer.alloc(width * height * 3);
  let x = seed;
  for (let i = 0, y = 0; y < height; y++) {
    for (let col = 0; col < width; col++, i += 3) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const base = 30 + (((col >> 3) + (y >> 3) + seed) % 120);
      const grain = ((x & 0x3f) - 32) >> 1;
      pixels[i] = base + grain;
      pixels[i + 1] = base - 10 + grain;
      pixels[i + 2] = base + 20 + (grain >> 1);
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}
