// A full disk (or quota), named once so the store, the encoder, the CLI and the API all say the
// same thing. The machine is named only by the caller that knows it: the server says "the
// server's disk" to a browser far away, the CLI just "the disk".
export class DiskFullError extends Error {
  constructor(
    readonly what: string,
    readonly machine?: 'server',
  ) {
    super(`the ${machine ? `${machine}'s ` : ''}disk is full: could not write ${what}; free some space${machine ? ` on the ${machine}` : ''} and try again`);
    this.name = 'DiskFullError';
  }

  /** The same failure told from the server's side. */
  onServer(): DiskFullError {
    return this.machine === 'server' ? this : new DiskFullError(this.what, 'server');
  }
}

export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Runs `write`; a no-space error becomes a DiskFullError naming `what` (and the machine, if given). */
export function diskFullAs<T>(what: string, write: () => T, machine?: 'server'): T {
  try {
    return write();
  } catch (err) {
    if (isNoSpace(err)) throw new DiskFullError(what, machine);
    throw err;
  }
}
