/**
 * The Deep Zoom levels of an image, as libvips' `dzsave` makes them: their numbers, their
 * sizes, and a level's pixels from the level above. Plain functions of numbers and bytes,
 * no sharp: the pixel worker makes a FITS's home level with them (see pixel-task).
 */

/** Interleaved 8-bit pixels and their shape (grey or RGB). */
export interface LevelPixels {
  data: Uint8Array;
  raw: { width: number; height: number; channels: 1 | 3 };
}

/** The deepest Deep Zoom level of an image (full resolution): libvips halves, rounding up, down to 1×1. */
export function topLevel(width: number, height: number): number {
  let level = 0;
  while (2 ** level < Math.max(width, height)) {
    level++;
  }
  return level;
}

/** Size of a level: the full image divided by 2^(top - level), rounded up as libvips does. */
export function levelSize(width: number, height: number, level: number): { width: number; height: number } {
  const scale = 2 ** (topLevel(width, height) - level);
  return { width: Math.ceil(width / scale), height: Math.ceil(height / scale) };
}

/** The deepest level whose long side is at most `limit` px (at least level 0). */
export function homeLevel(width: number, height: number, limit: number): number {
  let level = topLevel(width, height);
  while (level > 0 && Math.max(...Object.values(levelSize(width, height, level))) > limit) {
    level--;
  }
  return level;
}

/**
 * The home level (see {@link homeLevel}) when it is below the top: the level the full pixels
 * are shrunk to for the home tiles. Undefined when the full image is its own home level.
 */
export function homeLevelBelowTop(width: number, height: number, limit: number): number | undefined {
  const level = homeLevel(width, height, limit);
  return level < topLevel(width, height) ? level : undefined;
}

/**
 * The pixels of `level` from those of the full image, made as `dzsave` makes each level from
 * the one above: every output pixel the mean of a 2×2 block, rounded half up, the last row
 * or column of an odd size paired with itself. The tiles cut from them are byte for byte
 * those of a whole pyramid cut from the full image (pyramid-levels.spec). sharp has no such
 * reduction (its `resize` filters with a kernel: other pixels, and slower).
 */
export function shrinkToLevel(pixels: LevelPixels, level: number): LevelPixels & { data: Buffer } {
  let shrunk = { ...pixels, data: Buffer.from(pixels.data.buffer, pixels.data.byteOffset, pixels.data.byteLength) };
  for (let n = topLevel(pixels.raw.width, pixels.raw.height) - level; n > 0; n--) {
    shrunk = halve(shrunk);
  }
  return shrunk;
}

function halve({ data, raw: { width, height, channels } }: LevelPixels): LevelPixels & { data: Buffer } {
  const outWidth = Math.ceil(width / 2);
  const outHeight = Math.ceil(height / 2);
  // Its own memory (never a slice of Node's pool): the pixel worker moves it to the main thread.
  const out = Buffer.allocUnsafeSlow(outWidth * outHeight * channels);
  const row = width * channels;
  // Whole 2×2 blocks per row; an odd width's last column is then paired with itself.
  const pairs = width >> 1;
  const mean = (a: number, b: number, c: number, d: number): number => (a + b + c + d + 2) >> 2;
  let o = 0;
  for (let y = 0; y < outHeight; y++) {
    const top = 2 * y * row;
    // An odd height's last row is paired with itself.
    const bottom = 2 * y + 1 < height ? top + row : top;
    // One loop per channel count (every FITS and stretched image is grey or RGB), no inner loop.
    if (channels === 1) {
      for (let x = 0, i = top, j = bottom; x < pairs; x++, i += 2, j += 2) {
        out[o++] = mean(data[i], data[i + 1], data[j], data[j + 1]);
      }
    } else {
      for (let x = 0, i = top, j = bottom; x < pairs; x++, i += 6, j += 6) {
        out[o++] = mean(data[i], data[i + 3], data[j], data[j + 3]);
        out[o++] = mean(data[i + 1], data[i + 4], data[j + 1], data[j + 4]);
        out[o++] = mean(data[i + 2], data[i + 5], data[j + 2], data[j + 5]);
      }
    }
    if (width & 1) {
      const i = top + row - channels;
      const j = bottom + row - channels;
      for (let c = 0; c < channels; c++) {
        out[o++] = mean(data[i + c], data[i + c], data[j + c], data[j + c]);
      }
    }
  }
  return { data: out, raw: { width: outWidth, height: outHeight, channels } };
}
