// Deep Zoom arithmetic shared by the benches: the levels of a pyramid, the tiles a viewer
// needs at home zoom, and a level stitched back into one image from its tiles.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

/** Levels as Deep Zoom numbers them: level `max` is full size, each one below is half. */
export function levels(width, height) {
  const max = Math.ceil(Math.log2(Math.max(width, height)));
  const out = [];
  for (let level = max, w = width, h = height; level >= 0; level--) {
    out.push({ level, width: w, height: h });
    w = Math.ceil(w / 2);
    h = Math.ceil(h / 2);
  }
  return out;
}

/**
 * The level OpenSeadragon draws at home zoom, as the viewer configures it: the deepest one
 * whose pixels cover at least 0.7 device pixels once the image fits the screen.
 */
export function homeLevel(width, height, screen) {
  const { cssWidth, cssHeight, dpr } = screen;
  const minPixelRatio = 0.7; // viewer.js, in device pixels per level pixel
  const fit = Math.min(cssWidth / width, cssHeight / height); // CSS px per full-size pixel
  for (const l of levels(width, height)) {
    const ratio = ((fit * width) / l.width) * dpr; // device px per pixel of this level
    if (ratio >= minPixelRatio) {
      return { ...l, shownCss: { width: fit * width, height: fit * height }, devicePxPerLevelPx: ratio };
    }
  }
  return levels(width, height).at(-1);
}

/** Every tile of a level (the whole image is in view at home zoom). */
export function tilesOf(level, tileSize) {
  const tiles = [];
  for (let row = 0; row < Math.ceil(level.height / tileSize); row++) {
    for (let col = 0; col < Math.ceil(level.width / tileSize); col++) {
      tiles.push({ col, row });
    }
  }
  return tiles;
}

/** A level put back together from its tiles (overlap cut off), as raw RGB. */
export async function stitchLevel(folder, level, tileSize, overlap, ext) {
  const parts = [];
  let bytes = 0;
  for (const { col, row } of tilesOf(level, tileSize)) {
    const file = await readFile(join(folder, 'image_files', String(level.level), `${col}_${row}.${ext}`));
    bytes += file.length;
    const left = col > 0 ? overlap : 0;
    const top = row > 0 ? overlap : 0;
    const width = Math.min(tileSize, level.width - col * tileSize);
    const height = Math.min(tileSize, level.height - row * tileSize);
    const inner = await sharp(file).extract({ left, top, width, height }).toBuffer();
    parts.push({ input: inner, left: col * tileSize, top: row * tileSize });
  }
  const raw = await sharp({ create: { width: level.width, height: level.height, channels: 3, background: '#000' } })
    .composite(parts)
    .removeAlpha()
    .raw()
    .toBuffer();
  return { raw, bytes, tiles: parts.length };
}

/** PSNR (dB) and mean absolute error (0–255) between two raw RGB buffers of the same size. */
export function difference(a, b) {
  let squared = 0;
  let absolute = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    squared += d * d;
    absolute += Math.abs(d);
  }
  const mse = squared / a.length;
  return { psnr: mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse), mae: absolute / a.length };
}
