/**
 * Messages the server sends on `/ws`, as JSON text frames. Clients ignore fields and
 * types they do not know, so new members can be added without breaking ALS's viewer.
 */
export type ServerMessage =
  /** A new image and its data.json are on disk: fetch them. */
  | {
      type: 'new_image';
      /** The version now on disk (`/v/<version>/image.dzi`); absent while only the waiting image is there. */
      version?: number;
    }
  /** The server is stopping: close the socket; it may come back later. */
  | { type: 'disconnect' };

export type ServerMessageType = ServerMessage['type'];
