import sharp from 'sharp';

/**
 * The image shown until the first real one arrives: a dark sky with a few stars and a
 * ring, drawn from SVG shapes only so it needs no font on the machine.
 */
async function renderWaitingImage(width = 1280, height = 720): Promise<Buffer> {
  const stars = Array.from({ length: 90 }, (_, i) => {
    // A fixed pseudo-random field, so the waiting image is the same bytes at every start.
    const x = (i * 7919) % width;
    const y = (i * 104_729) % height;
    const r = 0.6 + ((i * 31) % 10) / 8;
    const o = 0.35 + ((i * 17) % 10) / 16;
    return `<circle cx="${x}" cy="${y}" r="${r.toFixed(2)}" fill="#fff" fill-opacity="${o.toFixed(2)}"/>`;
  }).join('');
  const cx = width / 2;
  const cy = height / 2;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs><radialGradient id="sky" cx="50%" cy="50%" r="70%">
    <stop offset="0" stop-color="#101a33"/><stop offset="1" stop-color="#02040a"/></radialGradient></defs>
  <rect width="100%" height="100%" fill="url(#sky)"/>${stars}
  <circle cx="${cx}" cy="${cy}" r="70" fill="none" stroke="#4a6fa5" stroke-width="6" stroke-dasharray="30 18"/>
  <circle cx="${cx}" cy="${cy}" r="8" fill="#4a6fa5"/>
</svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer();
}

/** A 32x32 favicon: a PNG wrapped in a single-entry ICO container (read by every browser). */
async function renderFavicon(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">
  <rect width="32" height="32" rx="6" fill="#0b1020"/>
  <circle cx="16" cy="16" r="9" fill="none" stroke="#c33" stroke-width="3"/>
  <circle cx="16" cy="16" r="3" fill="#fff"/></svg>`;
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  const header = Buffer.alloc(6 + 16);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(1, 4); // one image
  header.writeUInt8(32, 6); // width
  header.writeUInt8(32, 7); // height
  header.writeUInt8(0, 8); // no palette
  header.writeUInt8(0, 9); // reserved
  header.writeUInt16LE(1, 10); // colour planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(png.length, 14);
  header.writeUInt32LE(header.length, 18); // offset of the PNG
  return Buffer.concat([header, png]);
}

/** Renders once per process, on first use; a failed render is tried again next time. */
function once(render: () => Promise<Buffer>): () => Promise<Buffer> {
  let rendered: Promise<Buffer> | undefined;
  return () =>
    (rendered ??= render().catch((err: unknown) => {
      rendered = undefined;
      throw err;
    }));
}

/** The waiting image, drawn once and reused at every START. */
export const waitingImage = once(() => renderWaitingImage());

/** favicon.ico, drawn once and reused at every START. */
export const favicon = once(renderFavicon);

/** The installed app's icon (web app manifest): the favicon's ring, drawn at `size` pixels square. */
async function renderAppIcon(size: number): Promise<Buffer> {
  // Content inside the central 80 % so launchers that crop to a circle (maskable) keep it.
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 100 100">
  <rect width="100" height="100" fill="#0b1020"/>
  <circle cx="50" cy="50" r="22" fill="none" stroke="#c33" stroke-width="7"/>
  <circle cx="50" cy="50" r="7" fill="#fff"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** The app icons manifest.webmanifest names, by web-folder path; each drawn once and reused at every START. */
export const appIcons: [path: string, render: () => Promise<Buffer>][] = [192, 512].map((size) => [
  `icons/app-${size}.png`,
  once(() => renderAppIcon(size)),
]);
