/** Raw RGB pixels of a synthetic deep-sky stack; `seed` changes noise and stars. */
export function renderAstro(width?: number, height?: number, seed?: number): Promise<{ pixels: Buffer; width: number; height: number }>;

/** The synthetic stack as a JPEG (quality 90), the way a stacker saves it. */
export function makeAstroJpeg(width?: number, height?: number, seed?: number): Promise<Buffer>;
