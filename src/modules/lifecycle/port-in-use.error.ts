/** The port given to the service is already bound by another process. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`Port ${port} is already in use: stop the other program using it, or set PORT to a free port`);
    this.name = 'PortInUseError';
  }
}

/** The port could not be bound for another reason (permission, unknown address). */
export class PortBindError extends Error {
  constructor(
    readonly port: number,
    readonly code: string | undefined,
    cause: Error,
  ) {
    super(`Cannot bind port ${port}: ${cause.message}`, { cause });
    this.name = 'PortBindError';
  }
}
