// Longer and smoother videos (issue 23): segments from the last frame, frame interpolation and
// variations, through the pipeline and through the command line, on the demo model and the demo
// interpolator (random weights) on the CPU.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { io as ioClient } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSnapshot } from '../common/api-types.js';
import { parseSettings } from '../common/settings.js';
import { probeVideo } from '../media/ffmpeg.js';
import { DEMO_INTERPOLATOR } from '../models/paths.js';
import { chainFrameCount, interpolatedCount } from '../common/video-chain.js';
import { FrameInterpolator } from '../models/pipeline/interpolate.js';
import { GenerationCancelled, SvdPipeline } from '../models/pipeline/pipeline.js';
import { prepareImage } from '../models/pipeline/prepare-image.js';
import { generateChain, segmentSeed } from '../models/pipeline/video-chain.js';
import { JobStore } from '../server/jobs/job-store.js';
import { startServer, type RunningServer } from '../server/main.js';
import { FIXTURE_INPUT, FIXTURE_MODEL, fixtureCopy, tempDir, waitFor } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
/** The issue's command, as a user types it from the project's folder. */
const DEMO_JOB = ['generate', '--model', 'demo/svd-tiny/model', '--image', 'demo/svd-tiny/input.png'];
const cache = tempDir('svd-chain-cache-');

function svd(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'cli', 'svd.ts'), ...args],
      { cwd: ROOT, timeout: 120_000, env: { ...process.env, SVD_STUDIO_CACHE: cache, ...env } },
      (err, _stdout, stderr) => ok({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

describe('the chain in the pipeline', () => {
  let pipeline: SvdPipeline;
  let interpolator: FrameInterpolator;
  const W = 64;
  const H = 64;
  const frameBytes = W * H * 3;
  beforeAll(async () => {
    pipeline = await SvdPipeline.load(FIXTURE_MODEL, { provider: 'cpu', cacheDir: cache });
    interpolator = await FrameInterpolator.load(DEMO_INTERPOLATOR, { provider: 'cpu', cacheDir: cache });
  });
  afterAll(async () => {
    await pipeline?.release();
    await interpolator?.release();
  });
  const image = () => prepareImage(FIXTURE_INPUT, { width: W, height: H, framing: { mode: 'crop', x: 0.5, y: 0.5 } });
  const settings = (extra: object) => parseSettings({ width: W, height: H, frames: 3, steps: 1, seed: 42, ...extra });

  it('continues each segment from the last frame of the one before and keeps that frame once', async () => {
    const img = await image();
    const chain = await generateChain(pipeline, img, settings({ extend: 3 }));
    expect(chain.frameCount).toBe(3 * 3 - 2);
    expect(chain.seeds).toEqual([42, segmentSeed(42, 1), segmentSeed(42, 2)]);
    expect(new Set(chain.seeds).size).toBe(3);
    // Segment 1 is the plain clip of the job's seed; segment 2 the clip of the last frame with its own seed, less its first frame.
    const first = await pipeline.generate(img, settings({}));
    expect(Buffer.from(chain.rgb.subarray(0, 3 * frameBytes)).equals(Buffer.from(first.rgb))).toBe(true);
    const second = await pipeline.generate({ data: first.rgb.slice(2 * frameBytes), width: W, height: H }, settings({ seed: chain.seeds[1] }));
    expect(Buffer.from(chain.rgb.subarray(3 * frameBytes, 5 * frameBytes)).equals(Buffer.from(second.rgb.subarray(frameBytes)))).toBe(true);
  });

  it('interpolates after decoding: (F − 1)·K + 1 frames, the originals every K-th, fps × K', async () => {
    const img = await image();
    const events: string[] = [];
    const plain = await generateChain(pipeline, img, settings({ frames: 4 }));
    const chain = await generateChain(pipeline, img, settings({ frames: 4, interpolate: 4 }), { interpolator, onProgress: (e) => events.push(e.stage) });
    expect(chain.frameCount).toBe(interpolatedCount(4, 4));
    expect(chain.frameCount).toBe(chainFrameCount(settings({ frames: 4, interpolate: 4 }), 5));
    expect(chain.fps).toBe(7 * 4);
    for (let i = 0; i < 4; i++)
      expect(Buffer.from(chain.rgb.subarray(i * 4 * frameBytes, (i * 4 + 1) * frameBytes)).equals(Buffer.from(plain.rgb.subarray(i * frameBytes, (i + 1) * frameBytes)))).toBe(true);
    // The new frames are the interpolator's, not copies of either neighbour.
    const mid = chain.rgb.subarray(2 * frameBytes, 3 * frameBytes);
    expect(Buffer.from(mid).equals(Buffer.from(plain.rgb.subarray(0, frameBytes)))).toBe(false);
    expect(events.filter((s) => s === 'interpolating')).toHaveLength(3);
    expect(events.lastIndexOf('decoding')).toBeLessThan(events.indexOf('interpolating'));
  });

  it('reports "segment k/N" on every stage and cancels inside a later segment', async () => {
    const img = await image();
    const controller = new AbortController();
    const seen: string[] = [];
    const run = generateChain(pipeline, img, settings({ extend: 3, steps: 3 }), {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.stage === 'sampling') {
          seen.push(`${e.segment}/${e.segments} ${e.step}/${e.steps}`);
          if (e.segment === 2 && e.step === 1) controller.abort();
        }
      },
    });
    await expect(run).rejects.toBeInstanceOf(GenerationCancelled);
    expect(seen).toEqual(['1/3 1/3', '1/3 2/3', '1/3 3/3', '2/3 1/3']);
  });

  it('refuses interpolation without an interpolator', async () => {
    await expect(generateChain(pipeline, await image(), settings({ interpolate: 2 }))).rejects.toThrow(/npm run setup -- --interpolator rife/);
  });
});

describe('svd generate --extend --interpolate --variations', () => {
  it("writes the issue's 17-frame video (2 segments of 5, interpolated by 2)", async () => {
    const out = join(tempDir('svd-chain-'), 'x.mp4');
    const r = await svd([...DEMO_JOB, ...'--width 128 --height 64 --frames 5 --steps 2 --extend 2 --interpolate 2 --out'.split(' '), out]);
    expect(r.code, r.stderr).toBe(0);
    expect((await probeVideo(out)).frames).toBe(17);
    expect(r.stderr).toMatch(/segment 2\/2, step 2\/2/);
    expect(r.stderr).toMatch(/interpolating 8\/8/);
    expect(r.stderr).toMatch(/done: 17 frames 128x64 at 14 fps, segment seeds \d+, \d+/);
  });

  it('writes one video per variation, with consecutive seeds', async () => {
    const dir = tempDir('svd-variations-');
    const r = await svd([...DEMO_JOB, ...'--width 64 --height 64 --frames 2 --steps 1 --variations 3 --seed 41 --out'.split(' '), join(dir, 'v.mp4')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['v-seed41.mp4', 'v-seed42.mp4', 'v-seed43.mp4']);
    for (const seed of [41, 42, 43]) expect(r.stderr).toMatch(new RegExp(`done: 2 frames 64x64 at 7 fps, seed ${seed}, .* → ${join(dir, `v-seed${seed}.mp4`)}`));
    // The model loads once for all three.
    expect(r.stderr.match(/loading unet/g)).toHaveLength(1);
  });

  it('refuses --interpolate without an installed interpolator, with the command that installs one', async () => {
    const empty = tempDir('svd-no-interp-');
    mkdirSync(join(empty, 'rife'));
    const out = join(empty, 'x.mp4');
    const r = await svd(['generate', '--model', fixtureCopy(), '--image', FIXTURE_INPUT, '--interpolate', '2', '--out', out], { SVD_INTERPOLATOR_DIR: join(empty, 'rife') });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('error: --interpolate 2 needs a frame interpolator: install RIFE with npm run setup -- --interpolator rife (or give --interpolator DIR)');
    expect(existsSync(out)).toBe(false);
    const bad = await svd(['generate', '--image', 'x.png', '--interpolate', '3', '--extend', '9', '--variations', '0']);
    expect(bad.stderr.trim()).toBe('error: --extend must be 1–8; --interpolate must be 1, 2, 4 or 8; --variations must be 1–8');
  });
});

describe('server: segments, interpolation, variations, continuing', () => {
  let server: RunningServer;
  const out = tempDir('svd-chain-server-');
  const png = readFileSync(FIXTURE_INPUT);
  const small = { width: 64, height: 64, frames: 3, steps: 1, fps: 8 };
  const submit = async (base: string, settings: object) => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(png)]), 'input.png');
    form.append('settings', JSON.stringify(settings));
    const res = await fetch(`${base}api/jobs`, { method: 'POST', body: form });
    return { status: res.status, body: (await res.json()) as { id: string; ids?: string[]; error?: string } };
  };
  const getJob = async (id: string) => (await (await fetch(`${server.url}api/jobs/${id}`)).json()) as JobSnapshot;
  const finished = (id: string) => waitFor(async () => ((j) => (['done', 'failed', 'cancelled'].includes(j.status) ? j : undefined))(await getJob(id)));

  beforeAll(async () => {
    server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: join(out, 'jobs'), provider: 'cpu' }, () => {});
    await waitFor(async () => ((await (await fetch(`${server.url}api/health`)).json()) as { status: string }).status === 'ready' || undefined);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('runs a job of two segments interpolated by 2, reporting each segment and each seed', async () => {
    const socket = ioClient(server.url, { transports: ['websocket'] });
    const labels: string[] = [];
    socket.on('job', (j: JobSnapshot) => {
      const p = j.progress;
      if (p?.stage === 'sampling' && p.segment) labels.push(`segment ${p.segment}/${p.segments}, step ${p.step}/${p.steps}`);
      if (p?.stage === 'interpolating') labels.push(`interpolating ${p.pair}/${p.pairs}`);
    });
    await new Promise((ok) => socket.once('connect', () => ok(undefined)));
    const { status, body } = await submit(server.url, { ...small, extend: 2, interpolate: 2 });
    expect(status, body.error).toBe(202);
    await socket.emitWithAck('watch', body.id);
    const job = await finished(body.id);
    socket.close();
    expect(job.status, job.error).toBe('done');
    expect(job.seeds).toHaveLength(2);
    expect(job.seeds![0]).toBe(job.seed);
    expect(new JobStore(join(out, 'jobs')).load().find((j) => j.id === body.id)?.seeds).toEqual(job.seeds);
    expect(labels).toEqual(expect.arrayContaining(['segment 1/2, step 1/1', 'segment 2/2, step 1/1', 'interpolating 4/4']));
    const file = join(out, 'chain.mp4');
    writeFileSync(file, Buffer.from(await (await fetch(`${server.url}api/jobs/${body.id}/video.mp4`)).arrayBuffer()));
    // (2·3 − 1 − 1)·2 + 1 frames at 8 × 2 fps
    expect(await probeVideo(file)).toMatchObject({ frames: 9 });
    expect(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=r_frame_rate', '-of', 'csv=p=0', file]).toString().trim()).toBe('16/1');
  });

  it('makes one ordinary job per variation with consecutive seeds, linked as a group', async () => {
    const { status, body } = await submit(server.url, { ...small, variations: 3, seed: 100 });
    expect(status, body.error).toBe(202);
    expect(body.ids).toHaveLength(3);
    expect(body.ids![0]).toBe(body.id);
    const jobs = await Promise.all(body.ids!.map(finished));
    expect(jobs.map((j) => j.status)).toEqual(['done', 'done', 'done']);
    expect(jobs.map((j) => j.seed)).toEqual([100, 101, 102]);
    expect(jobs.map((j) => j.variation)).toEqual([1, 2, 3].map((index) => ({ group: body.id, index, of: 3 })));
    // A restart reads them back linked (the store the server loads at start).
    const reloaded = new JobStore(join(out, 'jobs')).load();
    expect(body.ids!.map((id) => reloaded.find((j) => j.id === id)?.variation?.index)).toEqual([1, 2, 3]);
    const posters = await Promise.all(body.ids!.map(async (id) => Buffer.from(await (await fetch(`${server.url}api/jobs/${id}/video.mp4`)).arrayBuffer())));
    expect(posters[0]!.equals(posters[1]!)).toBe(false);
    const tooFar = await submit(server.url, { ...small, variations: 3, seed: Number.MAX_SAFE_INTEGER - 1 });
    expect(tooFar.status).toBe(400);
    expect(tooFar.body.error).toBe('bad settings: seed must leave room for variations consecutive seeds (the largest seed is 9007199254740991)');
  });

  it('continues a finished job from its last frame as a new job linked to it', async () => {
    const first = await submit(server.url, small);
    const done = await finished(first.body.id);
    expect(done.status).toBe('done');
    const res = await fetch(`${server.url}api/jobs/${done.id}/continue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ settings: { seed: 5 } }) });
    expect(res.status).toBe(202);
    const next = await finished(((await res.json()) as { id: string }).id);
    expect(next).toMatchObject({ status: 'done', continues: done.id, seed: 5 });
    const lastFrame = readFileSync(join(out, 'jobs', done.id, 'last-frame.png'));
    expect(Buffer.from(await (await fetch(`${server.url}api/jobs/${next.id}/input.png`)).arrayBuffer()).equals(lastFrame)).toBe(true);
    const { data, info } = await sharp(lastFrame).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([64, 64]);
    expect(data.length).toBe(64 * 64 * 3);
    const queued = await submit(server.url, { ...small, steps: 50 });
    const early = await fetch(`${server.url}api/jobs/${queued.body.id}/continue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(early.status).toBe(409);
    await fetch(`${server.url}api/jobs/${queued.body.id}`, { method: 'DELETE' });
  });
});

describe('server without an interpolator', () => {
  it('refuses interpolate > 1 at submission with the command that installs one', async () => {
    const out = tempDir('svd-chain-noint-');
    const previous = process.env.SVD_INTERPOLATOR_DIR;
    process.env.SVD_INTERPOLATOR_DIR = join(out, 'none');
    const server = await startServer({ model: fixtureCopy(), port: 0, outputDir: join(out, 'jobs'), provider: 'cpu' }, () => {});
    try {
      const health = (await (await fetch(`${server.url}api/health`)).json()) as { models: { interpolator: boolean }[] };
      expect(health.models[0]!.interpolator).toBe(false);
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(readFileSync(FIXTURE_INPUT))]), 'input.png');
      form.append('settings', JSON.stringify({ width: 64, height: 64, interpolate: 4 }));
      const res = await fetch(`${server.url}api/jobs`, { method: 'POST', body: form });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe(
        'bad settings: interpolate 4 needs a frame interpolator, and none is installed on the server; install RIFE there with npm run setup -- --interpolator rife',
      );
    } finally {
      await server.close();
      if (previous === undefined) delete process.env.SVD_INTERPOLATOR_DIR;
      else process.env.SVD_INTERPOLATOR_DIR = previous;
    }
  });
});
