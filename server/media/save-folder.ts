// Drive-style saving: finished files are copied into one folder as numbered files that continue
// the folder's numbering (000001.mp4, 000001.json, 000002.mp4, ...), like the reference notebook.
// The folder may be a slow, flaky mount (Google Drive): each file is copied under a temp name,
// renamed, and its size checked; failures are retried later and never touch the job itself.
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

const NUMBERED = /^(\d{6,})\.[A-Za-z0-9]+$/;

export async function nextNumber(folder: string): Promise<number> {
  await mkdir(folder, { recursive: true });
  let max = 0;
  for (const name of await readdir(folder)) {
    const m = NUMBERED.exec(name);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

async function copyChecked(src: string, dest: string): Promise<void> {
  const tmp = join(dirname(dest), `.${basename(dest)}.partial`);
  try {
    await copyFile(src, tmp);
    const [a, b] = await Promise.all([stat(src), stat(tmp)]);
    if (a.size !== b.size) throw new Error(`copied ${b.size} of ${a.size} bytes`);
    await rename(tmp, dest);
  } finally {
    await rm(tmp, { force: true });
  }
}

export interface SaveOutcome {
  files: string[];
}

/**
 * Copies `files` (paths) into `folder` under the next free number, keeping each extension.
 * Retries with backoff (attempts × delayMs doubling); rejects only after the last attempt.
 */
export async function saveNumbered(folder: string, files: string[], opts: { attempts?: number; delayMs?: number } = {}): Promise<SaveOutcome> {
  const attempts = opts.attempts ?? 5;
  let delay = opts.delayMs ?? 2000;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const n = String(await nextNumber(folder)).padStart(6, '0');
      const written: string[] = [];
      for (const src of files) {
        const dest = join(folder, `${n}${extname(src)}`);
        await copyChecked(src, dest);
        written.push(dest);
      }
      return { files: written };
    } catch (err) {
      lastError = err;
      if (attempt < attempts) await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
  throw lastError;
}
