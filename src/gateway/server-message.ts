/**
 * Messages the server sends on `/ws`, as JSON text frames. Clients ignore fields and
 * types they do not know, so new members can be added without breaking ALS's viewer.
 */
export type ServerMessage =
  /** A new image and its data.json are on disk: fetch them. */
  /** `version`: its pyramid is at `/v/<version>/image.dzi`; absent while only the waiting image is there. */
  | { type: 'new_image'; version?: number }
  /** The server is stopping (or the operator dropped this viewer): close the socket. */
  | { type: 'disconnect' }
  /**
   * Sent once, right after the connection opens: this viewer's session id, the version on
   * screen now (when versions are known) and how many viewers are connected.
   */
  | { type: 'hello'; id: string; version?: number; viewers: number }
  /** The number of viewers changed (at most one per viewer-count interval). */
  | { type: 'viewers'; count: number }
  /** A message from the operator, to show to the people watching. */
  | { type: 'notice'; text: string };

export type ServerMessageType = ServerMessage['type'];
