export interface Level {
  level: number;
  width: number;
  height: number;
}
export function levels(width: number, height: number): Level[];
export function homeLevel(width: number, height: number, screen: { cssWidth: number; cssHeight: number; dpr: number }): Level & { devicePxPerLevelPx: number };
export function tilesOf(level: Level, tileSize: number): Array<{ col: number; row: number }>;
export function stitchLevel(folder: string, level: Level, tileSize: number, overlap: number, ext: string): Promise<{ raw: Buffer; bytes: number; tiles: number }>;
export function difference(a: Buffer, b: Buffer): { psnr: number; mae: number };
