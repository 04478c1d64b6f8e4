// One folder per job under the output directory: the input, job.json (settings, status, seed),
// the videos and a log. Every write goes to a temp file first and is renamed into place, so a
// crash never leaves a half-written file; history is read back from the folders at start.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JOB_ID, type JobRecord } from './job.js';

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export class JobStore {
  private readonly jobs = new Map<string, JobRecord>();

  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  /** Reads every job folder; jobs that were queued or running when the process died become interrupted. */
  load(): JobRecord[] {
    for (const name of readdirSync(this.root)) {
      if (!JOB_ID.test(name)) continue;
      const file = join(this.root, name, 'job.json');
      if (!existsSync(file)) continue;
      try {
        const job = JSON.parse(readFileSync(file, 'utf8')) as JobRecord;
        if (job.status === 'running' || job.status === 'queued') {
          job.status = 'interrupted';
          job.progress = undefined;
          job.error = 'the server stopped before this job finished; its input and settings are kept: run it again';
          this.save(job);
          this.log(job.id, 'marked interrupted at server start');
        }
        this.jobs.set(job.id, job);
      } catch {
        // A folder without a readable job.json is not a job of ours; leave it alone.
      }
    }
    return this.list();
  }

  newId(): string {
    let id: string;
    do id = randomBytes(12).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 16);
    while (id.length !== 16 || this.jobs.has(id));
    return id;
  }

  dir(id: string): string {
    if (!JOB_ID.test(id)) throw new Error(`invalid job id "${id}"`);
    return join(this.root, id);
  }

  create(job: JobRecord, files: Record<string, Uint8Array>): void {
    mkdirSync(this.dir(job.id), { recursive: true });
    for (const [name, data] of Object.entries(files)) writeFileAtomic(join(this.dir(job.id), name), data);
    this.save(job);
  }

  save(job: JobRecord): void {
    this.jobs.set(job.id, job);
    writeFileAtomic(join(this.dir(job.id), 'job.json'), JSON.stringify(job, null, 2));
  }

  log(id: string, line: string): void {
    appendFileSync(join(this.dir(id), 'log.txt'), `${new Date().toISOString()} ${line}\n`);
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
