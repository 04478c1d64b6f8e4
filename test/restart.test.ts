// What a killed process leaves on disk, read back at the next start: temp files of unfinished
// writes are removed, a save left pending is made again (or reported when no save folder is
// set), a video that is gone is no longer listed, and a job.json that is not a job record is
// left alone with a warning instead of being trusted.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../server/main.js';
import { tempDir, FIXTURE_INPUT } from './helpers.js';

const png = readFileSync(FIXTURE_INPUT);

async function runOneJob(outputDir: string): Promise<string> {
  const server = await startServer({ port: 0, outputDir, provider: 'cpu' }, () => {});
  try {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(png)]), 'in.png');
    form.append('settings', JSON.stringify({ width: 128, height: 64, frames: 3, steps: 1, formats: ['mp4', 'webm'], saveToFolder: true }));
    const { id } = (await (await fetch(`${server.url}api/jobs`, { method: 'POST', body: form })).json()) as { id: string };
    for (;;) {
      const job = (await (await fetch(`${server.url}api/jobs/${id}`)).json()) as { status: string };
      if (job.status === 'done') return id;
      if (job.status === 'failed') throw new Error(JSON.stringify(job));
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await server.close();
  }
}

describe('start-up after a kill -9', () => {
  let template: string;
  let doneId: string;

  beforeAll(async () => {
    template = tempDir('svd-restart-template-');
    doneId = await runOneJob(template);
  });

  /** A copy of the finished job's folder as a killed process would have left it. */
  function crashedCopy(edit: (job: Record<string, any>, dir: string) => void): string {
    const out = tempDir('svd-restart-');
    cpSync(template, out, { recursive: true });
    const dir = join(out, doneId);
    const job = JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')) as Record<string, any>;
    edit(job, dir);
    writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
    return out;
  }

  it('removes temp files of unfinished writes and makes a pending save again', async () => {
    const out = crashedCopy((job, dir) => {
      job.saved = { status: 'pending' };
      writeFileSync(join(dir, `.video.gif.${process.pid}.1764240000000.tmp`), '');
      writeFileSync(join(dir, `job.json.${process.pid}.0badcafe.tmp`), '{"half');
    });
    const saveDir = join(tempDir(), 'drive');
    mkdirSync(saveDir);
    writeFileSync(join(saveDir, '.000001.mp4.partial'), 'half a copy');
    const lines: string[] = [];
    const server = await startServer({ port: 0, outputDir: out, saveDir, provider: 'cpu' }, (l) => lines.push(l));
    try {
      await server.service.idle();
      expect(readdirSync(join(out, doneId)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(lines).toContain('removed the unfinished copy .000001.mp4.partial');
      const job = (await (await fetch(`${server.url}api/jobs/${doneId}`)).json()) as { saved: { status: string; files: string[] } };
      expect(job.saved).toEqual({ status: 'saved', files: ['000001.mp4', '000001.webm', '000001.json'].map((f) => join(saveDir, f)) });
      expect(readFileSync(join(saveDir, '000001.mp4'))).toEqual(readFileSync(join(out, doneId, 'video.mp4')));
      expect(readFileSync(join(out, doneId, 'log.txt'), 'utf8')).toMatch(/saving again: the server stopped before the save finished/);
    } finally {
      await server.close();
    }
  });

  it('reports a pending save as failed when no save folder is set any more', async () => {
    const out = crashedCopy((job) => (job.saved = { status: 'pending' }));
    const server = await startServer({ port: 0, outputDir: out, provider: 'cpu' }, () => {});
    try {
      const job = (await (await fetch(`${server.url}api/jobs/${doneId}`)).json()) as { saved: { status: string; error: string } };
      expect(job.saved).toMatchObject({ status: 'failed', error: expect.stringMatching(/no save folder is set now; download the video instead/) });
      expect(JSON.parse(readFileSync(join(out, doneId, 'job.json'), 'utf8')).saved.status).toBe('failed');
    } finally {
      await server.close();
    }
  });

  it('no longer lists a video that is gone, and says so when it is asked for', async () => {
    const out = crashedCopy((_job, dir) => rmSync(join(dir, 'video.webm')));
    const server = await startServer({ port: 0, outputDir: out, provider: 'cpu' }, () => {});
    try {
      const job = (await (await fetch(`${server.url}api/jobs/${doneId}`)).json()) as { videos: Record<string, string> };
      expect(job.videos).toEqual({ mp4: 'video.mp4' });
      const r = await fetch(`${server.url}api/jobs/${doneId}/video.webm`);
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: string }).error).toMatch(/the webm of job \w+ is no longer on the server/);
    } finally {
      await server.close();
    }
  });

  it('leaves a job.json that is not a job record alone, with a warning, and serves nothing from it', async () => {
    const out = crashedCopy((job) => (job.videos = { mp4: '../../../../etc/passwd' }));
    const broken = join(out, 'abcdefghijklmnop');
    mkdirSync(broken);
    writeFileSync(join(broken, 'job.json'), '{"id": "abcdefghijklmnop", "status": ');
    const stray = join(out, 'qrstuvwxyz012345');
    mkdirSync(stray);
    writeFileSync(join(stray, 'notes.txt'), 'not ours');
    const lines: string[] = [];
    const server = await startServer({ port: 0, outputDir: out, provider: 'cpu' }, (l) => lines.push(l));
    try {
      const warnings = lines.filter((l) => l.startsWith('warning: job'));
      expect(warnings).toHaveLength(2);
      expect(warnings).toEqual(
        expect.arrayContaining([
          expect.stringMatching(new RegExp(`^warning: job ${doneId}: job.json is not a job record \\(videos.mp4: .*\\); left as it is$`)),
          expect.stringMatching(/^warning: job abcdefghijklmnop: job.json is not readable JSON/),
        ]),
      );
      expect((await fetch(`${server.url}api/jobs/${doneId}/video.mp4`)).status).toBe(404);
      expect(await (await fetch(`${server.url}api/jobs`)).json()).toEqual([]);
      expect(existsSync(join(stray, 'notes.txt'))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
