// A full disk (or quota) is the server's condition, not the client's: named once here so the
// store, the encoder and the API all say the same thing and answer 507.
export class DiskFullError extends Error {
  constructor(readonly what: string) {
    super(`the server's disk is full: could not write ${what}; free some space on the server and try again`);
    this.name = 'DiskFullError';
  }
}

export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Runs `write`; a no-space error becomes a DiskFullError naming `what`. */
export function diskFullAs<T>(what: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    if (isNoSpace(err)) throw new DiskFullError(what);
    throw err;
  }
}
