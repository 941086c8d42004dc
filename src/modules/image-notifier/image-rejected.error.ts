/** Why an image was refused. */
export type ImageRejection =
  /** Not a format the service takes (the bytes or the declared type). */
  | 'unsupported-type'
  /** The right kind of file, but damaged or truncated. */
  | 'corrupt'
  /** More pixels than `maxInputPixels` (MAX_INPUT_PIXELS), found from the header before any decode. */
  | 'too-large';

/** An image that cannot be published; nothing on disk was changed. */
export class ImageRejectedError extends Error {
  override name = 'ImageRejectedError';

  constructor(
    readonly reason: ImageRejection,
    message: string,
  ) {
    super(message);
  }
}
