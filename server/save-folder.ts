// Drive-style saving: finished files are copied into one folder as numbered files that continue
// the folder's numbering (000001.mp4, 000001.json, 000002.mp4, ...), like the reference notebook.
// The folder may be a slow, flaky mount (Google Drive): each file is copied under a temp name,
// renamed, and its size checked; failures are retried later and never touch the job itself.
// The folder is made once, at start-up: one that disappears later (deleted, or a Drive that came
// unmounted) is an error to report, never silently re-created on the local disk.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { copyFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

const NUMBERED = /^(\d{6,})\.[A-Za-z0-9]+$/;
const PARTIAL = /^\.\d{6,}\.[A-Za-z0-9]+\.partial$/;

/** Google Drive as Colab mounts it (the notebook's --save-dir): the page calls it "the Drive folder". */
export const isDriveFolder = (folder: string) => /^\/content\/drive\//.test(folder);

/**
 * At start-up: makes the folder if only its last part is missing (a missing parent usually means
 * an unmounted drive) and removes copies a killed process left half-done. Returns what it did.
 */
export function prepareSaveFolder(folder: string): string[] {
  const done: string[] = [];
  if (!existsSync(folder)) {
    if (!existsSync(dirname(folder))) throw new Error(`the save folder's parent ${dirname(folder)} does not exist (is the drive mounted?); create it or choose another --save-dir`);
    mkdirSync(folder);
    done.push(`created the save folder ${folder}`);
  }
  if (!statSync(folder).isDirectory()) throw new Error(`--save-dir ${folder} is not a folder`);
  for (const name of readdirSync(folder)) {
    if (!PARTIAL.test(name)) continue;
    rmSync(join(folder, name), { force: true });
    done.push(`removed the unfinished copy ${name}`);
  }
  return done;
}

async function assertFolder(folder: string): Promise<void> {
  const s = await stat(folder).catch(() => undefined);
  if (!s) throw new Error(`the save folder ${folder} no longer exists (deleted, or the drive is not mounted); it is not re-created here, so that nothing is written to the wrong disk`);
  if (!s.isDirectory()) throw new Error(`the save folder ${folder} is not a folder`);
}

export async function nextNumber(folder: string): Promise<number> {
  await assertFolder(folder);
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
    if (a.size !== b.size) throw new Error(`copied ${b.size} of ${a.size} bytes of ${basename(src)}`);
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
    const written: string[] = [];
    try {
      const n = String(await nextNumber(folder)).padStart(6, '0');
      for (const src of files) {
        const dest = join(folder, `${n}${extname(src)}`);
        await copyChecked(src, dest);
        written.push(dest);
      }
      return { files: written };
    } catch (err) {
      lastError = err;
      // A half-saved set would take this number; the next attempt saves all of it afresh.
      await Promise.all(written.map((f) => rm(f, { force: true }).catch(() => {})));
      if (attempt < attempts) await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
  throw lastError;
}
