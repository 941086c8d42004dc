/**
 * Injection token (exported by WebAssetsModule) of a {@link CurrentVersion}: the version
 * whose image is on disk now, for a viewer that connects (`hello`) to catch up at once.
 */
export const CURRENT_VERSION = 'STACKCAST_CURRENT_VERSION';

/** Returns the version of the image on disk; undefined while it is the waiting image. */
export type CurrentVersion = () => number | undefined;
