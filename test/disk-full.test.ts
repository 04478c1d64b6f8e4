// A full disk, for real: the output folder on a 2 MB tmpfs filled to the last byte, or to a few
// pages short of it, while the server process writes jobs there. A job then fails with "disk
// full" or finishes with videos ffprobe finds whole, never a truncated one listed as a result;
// a submission leaves no folder behind; the process stays up and works again once space returns.
// Mounting needs root (or CAP_SYS_ADMIN): without it these tests are skipped, saying why.
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, fstatSync, openSync, readdirSync, readFileSync, rmSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskFullError } from '../media/disk-full.js';
import { encodeVideo, FfmpegError, probeVideo } from '../media/ffmpeg.js';
import { JobStore, writeFileAtomic } from '../server/jobs/job-store.js';
import { LAST_RESORT_PREFIX } from '../server/last-resort.js';
import { multipart, send, startCliServer, type CliServer } from './cli-server.js';
import { tempDir, FIXTURE_INPUT } from './helpers.js';

function mountTmpfs(): { dir: string } | { skip: string } {
  if (process.platform !== 'linux') return { skip: `tmpfs needs Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root; run as root (or in a container with CAP_SYS_ADMIN) to test a full disk' };
  const dir = tempDir('svd-fulldisk-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (err) {
    return { skip: `mount -t tmpfs failed (${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message})` };
  }
}

/** Takes every free byte but `leave` (rounded to pages by tmpfs) with one file; returns its path. */
function fill(dir: string, leave = 0): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  for (let chunk = 4096; ; ) {
    try {
      writeSync(fd, block.subarray(0, chunk));
    } catch {
      if (chunk === 1) break;
      chunk = Math.max(1, chunk >> 1);
    }
  }
  if (leave > 0) ftruncateSync(fd, Math.max(0, fstatSync(fd).size - leave));
  closeSync(fd);
  return path;
}

function noise(frames: number, width: number, height: number) {
  const rgb = new Uint8Array(frames * width * height * 3);
  let x = 12345;
  for (let i = 0; i < rgb.length; i++) rgb[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return { rgb, frameCount: frames, width, height, fps: 8 };
}

const mounted = mountTmpfs();
if ('skip' in mounted) console.log(`disk-full tests skipped: ${mounted.skip}`);
const fullDisk = describe.skipIf('skip' in mounted);

afterAll(() => {
  if ('dir' in mounted) execFileSync('umount', [mounted.dir]);
});

fullDisk('a full disk', () => {
  const root = 'dir' in mounted ? mounted.dir : '';

  it('the encoder never leaves a truncated video or a temp file, however little space is left', async () => {
    const video = noise(20, 128, 64);
    const dir = join(root, 'encode');
    execFileSync('mkdir', [dir]);
    const outcomes: string[] = [];
    for (const leave of [0, 4096, 16_384, 65_536, 200_000]) {
      for (const format of ['mp4', 'webm', 'gif'] as const) {
        const filler = fill(root, leave);
        const out = join(dir, `v${leave}.${format}`);
        try {
          await encodeVideo(video, out, format);
          expect((await probeVideo(out)).frames, `${format} with ${leave} bytes left`).toBe(20);
          outcomes.push(`${format}/${leave}: whole`);
        } catch (err) {
          expect(err, `${format} with ${leave} bytes left: ${(err as Error).message}`).toBeInstanceOf(DiskFullError);
          // media/ knows no server: the encoder says only whose disk it is not.
          expect((err as Error).message).toMatch(/^the disk is full: could not write/);
          expect(existsSync(out)).toBe(false);
          outcomes.push(`${format}/${leave}: disk full`);
        }
        expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
        rmSync(filler);
        rmSync(out, { force: true });
      }
    }
    // Both outcomes were seen: the test reached the edge where a write is cut off.
    console.log(`encoding on a full disk (format/bytes left: outcome): ${outcomes.join('; ')}`);
    expect(outcomes.some((o) => o.endsWith('disk full'))).toBe(true);
  });

  it('the job store writes whole files or nothing: no temp file, no half-made job folder', () => {
    const dir = join(root, 'store');
    const store = new JobStore(dir);
    const filler = fill(root);
    try {
      expect(() => writeFileAtomic(join(dir, 'x.json'), 'x'.repeat(10_000))).toThrow(DiskFullError);
      const job = { id: store.newId(), status: 'queued' as const, createdAt: new Date().toISOString(), settings: {} as never, videos: {}, inputName: 'input.png' };
      expect(() => store.create(job, { 'input.png': new Uint8Array(50_000) })).toThrow(/disk is full/);
      expect(readdirSync(dir)).toEqual([]);
      expect(store.get(job.id)).toBeUndefined();
    } finally {
      rmSync(filler);
    }
  });

  describe('the server process', () => {
    let server: CliServer;
    const out = join(root, 'jobs');
    const png = readFileSync(FIXTURE_INPUT);
    const form = (settings: object) =>
      multipart([
        { name: 'image', filename: 'in.png', data: png },
        { name: 'settings', data: JSON.stringify({ width: 128, height: 64, frames: 12, fps: 8, saveToFolder: false, ...settings }) },
      ]);
    const post = (settings: object) => {
      const f = form(settings);
      return send(server.url, 'POST', 'api/jobs', { headers: { 'content-type': f.contentType }, body: f.body });
    };
    const job = async (id: string) =>
      JSON.parse((await send(server.url, 'GET', `api/jobs/${id}`)).text) as { status: string; error?: string; videos: Record<string, string>; progress?: { stage: string } };
    const until = async (id: string, done: (j: Awaited<ReturnType<typeof job>>) => boolean) => {
      for (let i = 0; i < 1200; i++) {
        const j = await job(id);
        if (done(j)) return j;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`job ${id} did not get there`);
    };

    beforeAll(async () => {
      server = await startCliServer(['--output-dir', out]);
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('a submission on a full disk answers 507 "disk full" and leaves no job folder', async () => {
      const before = readdirSync(out);
      const filler = fill(root);
      try {
        const r = await post({ steps: 1 });
        expect(r.status).toBe(507);
        expect(JSON.parse(r.text).error).toMatch(/^the server's disk is full: could not write .*; free some space on the server and try again$/);
        expect(readdirSync(out)).toEqual(before);
      } finally {
        rmSync(filler);
      }
    });

    it('a disk that fills during a job: "disk full" or whole videos, never a truncated one listed', async () => {
      const seen: string[] = [];
      for (const leave of [0, 8192, 32_768, 131_072]) {
        const r = await post({ steps: 20, formats: ['webm', 'mp4', 'gif'] });
        expect(r.status).toBe(202);
        const id = (JSON.parse(r.text) as { id: string }).id;
        await until(id, (j) => j.progress?.stage === 'sampling');
        const filler = fill(root, leave);
        try {
          const end = await until(id, (j) => ['done', 'failed'].includes(j.status));
          for (const [format, name] of Object.entries(end.videos)) expect((await probeVideo(join(out, id, name))).frames, `${format} listed with ${leave} bytes left`).toBe(12);
          if (end.status === 'failed') expect(end.error).toMatch(/disk is full/);
          seen.push(`${leave}: ${end.status} with ${Object.keys(end.videos).join('+') || 'no video'}`);
          expect(readdirSync(join(out, id)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
        } finally {
          rmSync(filler);
        }
        expect(server.alive()).toBe(true);
      }
      console.log(`disk filled during jobs (bytes left: outcome): ${seen.join('; ')}`);
      expect(seen.some((s) => s.includes('failed'))).toBe(true);
    });

    it('once space returns the same process runs jobs again, never having reached its last resort', async () => {
      const r = await post({ steps: 2 });
      expect(r.status).toBe(202);
      const end = await until((JSON.parse(r.text) as { id: string }).id, (j) => ['done', 'failed'].includes(j.status));
      expect(end.status).toBe('done');
      expect(server.output()).not.toContain(LAST_RESORT_PREFIX);
    });
  });
});

describe('video checks that need no full disk', () => {
  it('a video cut short is not accepted: ffprobe counts its frames', async () => {
    const dir = tempDir();
    const whole = join(dir, 'whole.webm');
    await encodeVideo(noise(30, 128, 64), whole, 'webm');
    expect(await probeVideo(whole)).toMatchObject({ frames: 30 });
    const { verifyVideo } = await import('../media/ffmpeg.js');
    await expect(verifyVideo(whole, { frameCount: 30, fps: 8 })).resolves.toBeUndefined();
    const cut = join(dir, 'cut.webm');
    const bytes = readFileSync(whole);
    execFileSync('head', ['-c', String(Math.floor(bytes.length * 0.6)), whole], { stdio: ['ignore', openSync(cut, 'w'), 'ignore'] });
    await expect(verifyVideo(cut, { frameCount: 30, fps: 8 }, 'video.webm')).rejects.toThrow(FfmpegError);
    await expect(verifyVideo(cut, { frameCount: 30, fps: 8 }, 'video.webm')).rejects.toThrow(/ffmpeg wrote an incomplete video.webm: it holds \d+ of 30 frames/);
    await expect(verifyVideo(whole, { frameCount: 31, fps: 8 })).rejects.toThrow(/holds 30 of 31 frames/);
  });

  it('whole videos pass the check at every frame rate and length, GIF at 60 fps and one frame included', async () => {
    const dir = tempDir();
    for (const format of ['mp4', 'webm', 'gif'] as const) {
      for (const fps of [1, 7, 60]) {
        for (const frames of [1, 130]) {
          const out = join(dir, `${fps}-${frames}.${format}`);
          await expect(encodeVideo({ ...noise(frames, 32, 32), fps }, out, format), `${format} ${fps} fps ${frames} frames`).resolves.toBe(out);
        }
      }
    }
  });
});
