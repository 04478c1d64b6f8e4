// One folder per job under the output directory: the input, job.json (settings, status, seed),
// the videos and a log. Every write goes to a temp file first and is renamed into place, so a
// crash never leaves a half-written file; history is read back from the folders at start, where
// each job.json is checked like any other outside input and leftover temp files are removed.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { diskFullAs } from '../../media/disk-full.js';
import { videoFormats } from '../../common/video-formats.js';
import { JOB_ID, jobRecordSchema, type JobRecord } from './job.js';

/** Writes beside `path` and renames into place; the temp file never outlives a failed write. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    diskFullAs(basename(path), () => writeFileSync(tmp, data), 'server');
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

const FILE_NAME = /^[\w.-]+$/;

/** job.json as read back from disk: the record's schema, ids and file names held to their patterns (no paths). */
const storedJobSchema = jobRecordSchema.extend({
  id: z.string().regex(JOB_ID),
  videos: z.partialRecord(z.enum(videoFormats), z.string().regex(/^video\.(mp4|webm|gif)$/)),
  inputName: z.string().regex(FILE_NAME),
  rerunOf: z.string().regex(JOB_ID).optional(),
  continues: z.string().regex(JOB_ID).optional(),
  variation: jobRecordSchema.shape.variation
    .unwrap()
    .extend({ group: z.string().regex(JOB_ID) })
    .optional(),
  owner: z
    .string()
    .regex(/^[a-f0-9]{32}$/)
    .optional(),
});

export class JobStore {
  private readonly jobs = new Map<string, JobRecord>();
  /** Bytes in each job's folder, as last measured (at start, creation and the job's end). */
  private readonly sizes = new Map<string, number>();

  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  /**
   * Reads every job folder: jobs that were queued or running when the process died become
   * interrupted (unless `keepUnfinished`: a queue outside this process still holds them), temp
   * files of unfinished writes are removed, and videos no longer on disk are no longer listed.
   * `warn` hears about folders that could not be read.
   */
  load(warn: (line: string) => void = () => {}, { keepUnfinished = false } = {}): JobRecord[] {
    for (const name of readdirSync(this.root)) {
      if (!JOB_ID.test(name)) continue;
      const dir = join(this.root, name);
      const file = join(dir, 'job.json');
      if (!existsSync(file)) continue;
      for (const f of readdirSync(dir)) if (f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        warn(`job ${name}: job.json is not readable JSON (${(err as Error).message}); left as it is`);
        continue;
      }
      const parsed = storedJobSchema.safeParse(raw);
      if (!parsed.success || parsed.data.id !== name) {
        const why = parsed.success ? 'its id is not its folder name' : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
        warn(`job ${name}: job.json is not a job record (${why}); left as it is`);
        continue;
      }
      const job: JobRecord = { ...parsed.data, progress: parsed.data.status === 'done' ? { stage: 'done' } : undefined };
      let changed = false;
      for (const [format, video] of Object.entries(job.videos)) {
        const size = existsSync(join(dir, video)) ? statSync(join(dir, video)).size : 0;
        if (size > 0) continue;
        delete job.videos[format as keyof JobRecord['videos']];
        changed = true;
      }
      if ((job.status === 'running' || job.status === 'queued') && !keepUnfinished) {
        job.status = 'interrupted';
        job.error = 'the server stopped before this job finished; its input and settings are kept: run it again';
        changed = true;
        this.log(job.id, 'marked interrupted at server start');
      }
      this.jobs.set(job.id, job);
      this.measure(job.id);
      if (changed) {
        try {
          this.save(job);
        } catch (err) {
          warn(`job ${name}: could not update job.json (${(err as Error).message})`);
        }
      }
    }
    return this.list();
  }

  newId(): string {
    let id: string;
    do
      id = randomBytes(12)
        .toString('base64url')
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(0, 16);
    while (id.length !== 16 || this.jobs.has(id));
    return id;
  }

  dir(id: string): string {
    if (!JOB_ID.test(id)) throw new Error(`invalid job id "${id}"`);
    return join(this.root, id);
  }

  /** The job's folder with its files and job.json, or nothing at all if any write fails. */
  create(job: JobRecord, files: Record<string, Uint8Array>): void {
    const dir = this.dir(job.id);
    try {
      diskFullAs('a new job folder', () => mkdirSync(dir, { recursive: true }), 'server');
      for (const [name, data] of Object.entries(files)) writeFileAtomic(join(dir, name), data);
      this.save(job);
      this.measure(job.id);
    } catch (err) {
      this.jobs.delete(job.id);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Updates the record in memory, then on disk (which may throw DiskFullError). */
  save(job: JobRecord): void {
    this.jobs.set(job.id, job);
    writeFileAtomic(join(this.dir(job.id), 'job.json'), JSON.stringify(job, null, 2));
  }

  /** Best effort: a log line that cannot be written (full disk) must not fail the job. */
  log(id: string, line: string): void {
    try {
      appendFileSync(join(this.dir(id), 'log.txt'), `${new Date().toISOString()} ${line}\n`);
    } catch (err) {
      console.error(`job ${id}: could not write to log.txt (${(err as Error).message}): ${line}`);
    }
  }

  /** Removes the job's folder and record; false if there was no such job. */
  remove(id: string): boolean {
    if (!this.jobs.has(id)) return false;
    rmSync(this.dir(id), { recursive: true, force: true });
    this.jobs.delete(id);
    this.sizes.delete(id);
    return true;
  }

  /** Counts the bytes now in the job's folder. */
  measure(id: string): void {
    let bytes = 0;
    try {
      for (const f of readdirSync(this.dir(id), { withFileTypes: true })) if (f.isFile()) bytes += statSync(join(this.dir(id), f.name)).size;
    } catch {
      // a folder removed behind our back holds nothing
    }
    this.sizes.set(id, bytes);
  }

  /** Bytes in all job folders, as last measured. */
  get usedBytes(): number {
    let sum = 0;
    for (const b of this.sizes.values()) sum += b;
    return sum;
  }

  get(id: string): JobRecord | undefined {
    return JOB_ID.test(id) ? this.jobs.get(id) : undefined;
  }

  /** Newest first. */
  list(): JobRecord[] {
    return [...this.jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  file(id: string, name: string): string {
    return join(this.dir(id), name);
  }
}
