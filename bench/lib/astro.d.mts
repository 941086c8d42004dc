/** One synthetic stack as a JPEG (quality 90); two seeds are two publishes of the same target. */
export function makeAstroJpeg(width?: number, height?: number, seed?: number): Promise<Buffer>;
/** The samples of a linear 16-bit stack (a sky at 3 % of full scale, noise, a few stars), interleaved, top row first. */
export function linearSky(width: number, height: number, channels?: number, seed?: number): Uint16Array;
