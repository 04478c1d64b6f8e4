// One server per output folder. A second `npm start` (a notebook cell run twice) must not load the
// job store, where it would mark the first server's running job interrupted and delete its temp
// files: it takes an exclusive lock file before touching anything, and says who holds it.
// The lock is a file created with O_EXCL holding the owner's pid and address; one left by a
// process that is gone (killed, machine restarted) is taken over.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';

export const LOCK_FILE = '.svd-studio.lock';

const lockSchema = z.object({ pid: z.number().int().positive(), url: z.string(), link: z.string().optional(), startedAt: z.string() });
type LockInfo = z.infer<typeof lockSchema>;

export class FolderInUseError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockInfo | undefined {
  try {
    const parsed = lockSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface FolderLock {
  path: string;
  /** Records the address once it is known (a port chosen by the system), and the public link once open. */
  describe(where: { url?: string; link?: string }): void;
  release(): void;
}

/** Takes the folder's lock for this process, or throws FolderInUseError naming the process that holds it. */
export function lockOutputFolder(dir: string, url: string): FolderLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = readLock(path);
      if (held && held.pid !== process.pid && alive(held.pid)) {
        throw new FolderInUseError(
          `another svd-studio server (process ${held.pid}, ${held.url}${held.link ? `, public link ${held.link}` : ''}, started ${held.startedAt}) is using the output folder ${dir}; open that one, stop it first (kill ${held.pid}), or start this one with another --output-dir`,
        );
      }
      // Left by a process that is gone (or half-written by one that died while writing it).
      rmSync(path, { force: true });
      continue;
    }
    let info: LockInfo = { pid: process.pid, url, startedAt: new Date().toISOString() };
    writeSync(fd, JSON.stringify(info));
    closeSync(fd);
    return {
      path,
      describe: (where) => {
        info = { ...info, ...where };
        writeFileSync(path, JSON.stringify(info));
      },
      release: () => {
        if (readLock(path)?.pid === process.pid) rmSync(path, { force: true });
      },
    };
  }
  throw new FolderInUseError(`the output folder ${dir} is being locked by another process at this moment; try again`);
}

/** Throws when something already listens on host:port, before the server loads anything. */
export async function checkPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((ok, fail) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'EADDRINUSE' ? new FolderInUseError(`port ${port} on ${host} is already in use (another svd-studio server?); stop it, or start with --port N`) : err),
    );
    probe.listen(port, host, () => probe.close(() => ok()));
  });
}
