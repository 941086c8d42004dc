import sharp from 'sharp';

export interface Colour {
  r: number;
  g: number;
  b: number;
}

/** A solid-colour JPEG made with sharp (decodable, with a real header and EOI). */
export function makeJpeg({ width = 64, height = 48, color = { r: 200, g: 30, b: 30 } }: { width?: number; height?: number; color?: Colour } = {}): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: color } }).jpeg({ quality: 90 }).toBuffer();
}

/** A solid-colour PNG. */
export function makePng({ width = 64, height = 48, color = { r: 30, g: 200, b: 30 } }: { width?: number; height?: number; color?: Colour } = {}): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: color } }).png().toBuffer();
}

/** Decodes a JPEG and returns its average colour, to tell images apart by pixels. */
export async function averageColour(jpeg: Buffer): Promise<Colour> {
  const { channels } = await sharp(jpeg).stats();
  return { r: Math.round(channels[0].mean), g: Math.round(channels[1].mean), b: Math.round(channels[2].mean) };
}
