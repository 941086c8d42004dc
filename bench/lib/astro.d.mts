/** One synthetic stack as a JPEG (quality 90); two seeds are two publishes of the same target. */
export function makeAstroJpeg(width?: number, height?: number, seed?: number): Promise<Buffer>;
