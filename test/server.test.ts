// The real server on a free port with the tiny model on the CPU, driven by real HTTP and
// socket.io clients.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../server/main.js';
import { DEMO_ANIMATELCM_MODEL } from '../models/paths.js';
import { FIXTURE_MODEL, tempDir, FIXTURE_INPUT, waitFor } from './helpers.js';

const png = readFileSync(FIXTURE_INPUT);
const small = { width: 128, height: 64, frames: 3, steps: 2, fps: 8 };
const quiet = () => {};

async function submit(base: string, settings: object, opts: { token?: string; image?: Buffer; name?: string } = {}) {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(opts.image ?? png)]), opts.name ?? 'input.png');
  form.append('settings', JSON.stringify(settings));
  const res = await fetch(`${base}api/jobs`, { method: 'POST', body: form, headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} });
  return { status: res.status, body: (await res.json()) as { id?: string; position?: number; error?: string } };
}

const getJob = async (base: string, id: string) => (await (await fetch(`${base}api/jobs/${id}`)).json()) as Record<string, any>;
const finished = (base: string, id: string) =>
  waitFor(async () => {
    const j = await getJob(base, id);
    return ['done', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  });

function connect(base: string, token?: string): Promise<Socket> {
  const socket = ioClient(base, { auth: token ? { token } : {}, transports: ['websocket'], reconnectionDelay: 100 });
  return new Promise((ok, fail) => {
    socket.once('connect', () => ok(socket));
    socket.once('connect_error', fail);
  });
}
const plan = (base: string, body: unknown) =>
  fetch(`${base}api/plan`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as Record<string, any>,
  }));
const watch = (socket: Socket, id: string) => socket.emitWithAck('watch', id) as Promise<{ job?: Record<string, any>; error?: string }>;

describe('server', () => {
  let server: RunningServer;
  const out = tempDir('svd-server-');
  const saveDir = join(out, 'drive');

  beforeAll(async () => {
    mkdirSync(saveDir, { recursive: true });
    writeFileSync(join(saveDir, '000007.mp4'), 'older video');
    server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: join(out, 'jobs'), saveDir, provider: 'cpu' }, quiet);
    await waitFor(async () => ((await (await fetch(`${server.url}api/health`)).json()) as { status: string }).status === 'ready' || undefined);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('runs a job: ordered progress over socket.io, then an H.264 MP4 with the right frames and fps', async () => {
    const socket = await connect(server.url);
    const events: Record<string, any>[] = [];
    socket.on('job', (j) => events.push(j));
    const { status, body } = await submit(server.url, { ...small, steps: 6 });
    expect(status).toBe(202);
    const first = await watch(socket, body.id!);
    expect(first.job?.id).toBe(body.id);
    const job = await finished(server.url, body.id!);
    socket.close();
    expect(job.status).toBe('done');
    expect(Number.isInteger(job.seed)).toBe(true);
    const rank = { queued: 0, loading: 1, encoding: 2, sampling: 3, decoding: 4, writing: 5, done: 6 } as Record<string, number>;
    const stages = events.map((e) => e.progress?.stage).filter(Boolean);
    expect(stages.at(-1)).toBe('done');
    for (let i = 1; i < stages.length; i++) expect(rank[stages[i]]!).toBeGreaterThanOrEqual(rank[stages[i - 1]]!);
    const steps = events.filter((e) => e.progress?.stage === 'sampling').map((e) => e.progress.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    const video = Buffer.from(await (await fetch(`${server.url}api/jobs/${body.id}/video.mp4`)).arrayBuffer());
    const file = join(out, 'v.mp4');
    writeFileSync(file, video);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,pix_fmt,nb_read_frames,r_frame_rate', '-of', 'json', file]).toString())
      .streams[0];
    expect(probe).toMatchObject({ codec_name: 'h264', pix_fmt: 'yuv420p', nb_read_frames: '3', r_frame_rate: '8/1' });
    const input = await fetch(`${server.url}api/jobs/${body.id}/input.png`);
    expect(input.headers.get('content-type')).toBe('image/png');
  });

  it('queues jobs in order, pushes positions, and cancels a running job keeping its input and settings', async () => {
    const socket = await connect(server.url);
    const a = await submit(server.url, { ...small, steps: 60 });
    const b = await submit(server.url, small);
    const c = await submit(server.url, small);
    expect([b.body.position, c.body.position]).toEqual([1, 2]);
    const positions: number[] = [];
    socket.on('job', (j) => j.id === c.body.id && j.progress?.stage === 'queued' && positions.push(j.progress.position));
    await watch(socket, c.body.id!);
    await waitFor(async () => (await getJob(server.url, a.body.id!)).progress?.stage === 'sampling' || undefined);
    const del = await fetch(`${server.url}api/jobs/${a.body.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect((await finished(server.url, a.body.id!)).status).toBe('cancelled');
    expect(existsSync(join(out, 'jobs', a.body.id!, 'input.png'))).toBe(true);
    expect((await getJob(server.url, a.body.id!)).settings.steps).toBe(60);
    expect((await finished(server.url, b.body.id!)).status).toBe('done');
    expect((await finished(server.url, c.body.id!)).status).toBe('done');
    expect(positions).toContain(1);
    const again = await fetch(`${server.url}api/jobs/${a.body.id}`, { method: 'DELETE' });
    expect(again.status).toBe(409);
    socket.close();
  });

  it('sends a full snapshot again after the connection drops mid-job', async () => {
    const socket = await connect(server.url);
    const { body } = await submit(server.url, { ...small, steps: 80 });
    await watch(socket, body.id!);
    await waitFor(async () => (await getJob(server.url, body.id!)).progress?.stage === 'sampling' || undefined);
    const reconnected = new Promise<void>((ok) => socket.io.once('reconnect', () => ok()));
    socket.io.engine.close();
    await reconnected;
    const snap = await watch(socket, body.id!);
    expect(['running', 'done']).toContain(snap.job?.status);
    expect(snap.job?.settings.steps).toBe(80);
    await finished(server.url, body.id!);
    socket.close();
  });

  it('continues the save folder numbering', async () => {
    const { body } = await submit(server.url, small);
    await finished(server.url, body.id!);
    await server.service.idle();
    // Earlier finished jobs of this server were saved too: numbers continue from 000007, no gaps.
    const numbers = readdirSync(saveDir)
      .filter((f) => f.endsWith('.mp4'))
      .map((f) => Number(f.slice(0, 6)))
      .sort((x, y) => x - y);
    expect(numbers[0]).toBe(7);
    expect(numbers).toEqual(numbers.map((_, i) => 7 + i));
    const last = String(numbers.at(-1)).padStart(6, '0');
    expect(JSON.parse(readFileSync(join(saveDir, `${last}.json`), 'utf8')).seed).toBe((await getJob(server.url, body.id!)).seed);
    expect((await getJob(server.url, body.id!)).saved).toMatchObject({ status: 'saved' });
  });

  it("plans a job as the worker will (POST /api/plan): auto's chunk, the host memory it was checked against, a refusal in plain words, the schema's messages", async () => {
    const auto = await plan(server.url, { settings: { ...small, frames: 20 } });
    expect(auto).toMatchObject({ status: 200, body: { plan: { provider: 'cpu', frames: 20, decodeChunk: 8, decodeChunkAuto: true, sessions: 'shared', memory: { kind: 'host' } } } });
    expect(auto.body.plan.memory.peakMiB).toBeGreaterThan(0);
    expect(auto.body.plan.memory.peakMiB).toBeLessThan(auto.body.plan.memory.availableMiB);
    expect((await plan(server.url, { settings: { ...small, decodeChunk: 2 } })).body.plan).toMatchObject({ decodeChunk: 2, decodeChunkAuto: false, frames: 3 });
    // Far more than any machine this runs on: refused, naming the size and what to lower.
    const huge = await plan(server.url, { settings: { width: 2048, height: 1024, frames: 128, decodeChunk: 128 } });
    expect(huge).toMatchObject({
      status: 200,
      body: { refused: expect.stringMatching(/^Not enough memory for this job on the CPU: 128 frames at 2048x1024 need about [\d.]+ GiB .*Lower the frames or the size/) },
    });
    expect(await plan(server.url, { settings: { ...small, decodeChunk: 0 } })).toMatchObject({ status: 400, body: { error: 'bad settings: decodeChunk must be 1–128 or auto' } });
    expect(await plan(server.url, { settings: { ...small, model: 'nope' } })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/model "nope" is not installed/) } });
    expect(await plan(server.url, [1])).toMatchObject({ status: 400, body: { error: expect.stringMatching(/JSON object like/) } });
  });

  it('answers bad requests with a 4xx and a clear message, and stays up', async () => {
    expect(await submit(server.url, small, { image: Buffer.from('hello, not an image') })).toMatchObject({ status: 415, body: { error: expect.stringMatching(/not an image we can read/) } });
    expect(await submit(server.url, small, { image: Buffer.alloc(21 * 1024 * 1024) })).toMatchObject({ status: 413, body: { error: expect.stringMatching(/larger than 20 MB/) } });
    expect(await submit(server.url, { ...small, width: 100 })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/width must be a multiple of 64/) } });
    // What the worker would refuse is refused at once, in the planner's words.
    expect(await submit(server.url, { width: 2048, height: 1024, frames: 128 })).toMatchObject({
      status: 422,
      body: { error: expect.stringMatching(/^Not enough memory for this job on the CPU: 128 frames at 2048x1024/) },
    });
    expect(await submit(server.url, { ...small, formats: ['avi'] })).toMatchObject({ status: 400 });
    const form = new FormData();
    form.append('settings', '{');
    form.append('image', new Blob([new Uint8Array(png)]), 'x.png');
    expect((await fetch(`${server.url}api/jobs`, { method: 'POST', body: form })).status).toBe(400);
    for (const path of ['api/jobs/..%2F..%2Fetc%2Fpasswd', 'api/jobs/..%2Fjob.json/video.mp4', 'api/jobs/aaaaaaaaaaaaaaaa/video.mp4', 'api/jobs/%2e%2e/input.png']) {
      const r = await fetch(`${server.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(((await r.json()) as { error: string }).error).toMatch(/no (job|such)/);
    }
    const huge = await (await import('sharp'))
      .default({ create: { width: 10000, height: 6000, channels: 3, background: '#000' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(await submit(server.url, small, { image: huge })).toMatchObject({ status: 413, body: { error: expect.stringMatching(/megapixels/) } });
    expect((await fetch(`${server.url}api/health`)).status).toBe(200);
  });
});

describe('server with a token, across a restart', () => {
  it('requires the token, keeps history, marks a running job interrupted and re-runs it in one request', async () => {
    const dir = tempDir('svd-restart-');
    const token = 'secret-token-123';
    let server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: dir, token, provider: 'cpu' }, quiet);
    expect((await submit(server.url, small)).status).toBe(401);
    expect((await submit(server.url, small, { token: 'wrong-token-000' })).body.error).toMatch(/wrong access token/);
    await expect(connect(server.url)).rejects.toThrow(/access token required/);
    const { body } = await submit(server.url, small, { token });
    const auth = { authorization: `Bearer ${token}` };
    await waitFor(async () => ['done', 'failed'].includes(((await (await fetch(`${server.url}api/jobs/${body.id}`, { headers: auth })).json()) as { status: string }).status) || undefined);
    const viaLink = await fetch(`${server.url}api/jobs?token=${token}`);
    expect(viaLink.status).toBe(200);
    expect(viaLink.headers.get('set-cookie')).toMatch(/svd_token=/);
    await server.close();

    // A job that was running when the process died.
    const jobFile = join(dir, body.id!, 'job.json');
    const crashed = { ...JSON.parse(readFileSync(jobFile, 'utf8')), status: 'running' };
    writeFileSync(jobFile, JSON.stringify(crashed));
    server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: dir, token, provider: 'cpu' }, quiet);
    const list = (await (await fetch(`${server.url}api/jobs`, { headers: auth })).json()) as { id: string; status: string; error?: string }[];
    expect(list.map((j) => j.id)).toContain(body.id);
    expect(list.find((j) => j.id === body.id)).toMatchObject({ status: 'interrupted', error: expect.stringMatching(/run it again/) });
    const rerun = await fetch(`${server.url}api/jobs/${body.id}/rerun`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ settings: { seed: 5 } }) });
    expect(rerun.status).toBe(202);
    const { id } = (await rerun.json()) as { id: string };
    const done = await waitFor(async () => {
      const j = (await (await fetch(`${server.url}api/jobs/${id}`, { headers: auth })).json()) as { status: string; seed?: number; rerunOf?: string };
      return j.status === 'done' ? j : undefined;
    });
    expect(done).toMatchObject({ seed: 5, rerunOf: body.id });
    await server.close();
  });
});

describe('bounded load on loopback', () => {
  it('delivers every event to every watching client', async () => {
    const { runLoadTest } = await import('../bench/load-test.js');
    const r = await runLoadTest(8, 4, FIXTURE_MODEL, png);
    expect(r.eventsSent).toBeGreaterThan(0);
    expect(r.lost).toBe(0);
    expect(r.eventsReceived).toBe(r.eventsSent);
    expect(r.queueFullAnswered).toBe(true);
  });
});

describe('several installed models', () => {
  it('lists them in /api/health and runs a job on the one it asks for', async () => {
    const root = tempDir('svd-models-');
    const other = join(root, 'svd-tiny-14');
    execFileSync('cp', ['-r', FIXTURE_MODEL, other]);
    const cfgPath = join(other, 'unet', 'config.json');
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, 'utf8')), num_frames: 4 }));
    execFileSync('cp', ['-r', DEMO_ANIMATELCM_MODEL, join(root, 'animatelcm-tiny')]);
    const { discoverModels } = await import('../server/model-manager.js');
    expect(discoverModels({ path: FIXTURE_MODEL, demo: false }, root).map((m) => [m.name, m.frames, m.fast])).toEqual([
      ['model', 5, false],
      ['animatelcm-tiny', 5, true],
      ['svd-tiny-14', 4, false],
    ]);
    const server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir(), provider: 'cpu', modelsRoot: root }, quiet);
    try {
      const health = (await (await fetch(`${server.url}api/health`)).json()) as { models: { name: string; fast: boolean }[] };
      expect(health.models.map((m) => [m.name, m.fast])).toEqual([
        ['model', false],
        ['animatelcm-tiny', true],
        ['svd-tiny-14', false],
      ]);
      // No worker holds that model yet: nothing to plan from until a job loads it.
      await waitFor(async () => ((await (await fetch(`${server.url}api/health`)).json()) as { status: string }).status === 'ready' || undefined);
      expect(await plan(server.url, { settings: { model: 'svd-tiny-14' } })).toMatchObject({ status: 503, body: { error: expect.stringMatching(/once model "svd-tiny-14" has loaded/) } });
      const { body } = await submit(server.url, { width: 128, height: 64, steps: 2, model: 'svd-tiny-14' });
      const job = await finished(server.url, body.id!);
      expect(job.status).toBe('done');
      const frames = JSON.parse(
        execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=nb_read_frames', '-of', 'json', join(server.service.store.dir(body.id!), 'video.mp4')]).toString(),
      ).streams[0].nb_read_frames;
      expect(frames).toBe('4');
      expect((await submit(server.url, { ...small, model: 'nope' })).body.error).toMatch(/model "nope" is not installed; installed: model, animatelcm-tiny, svd-tiny-14/);
      const h2 = (await (await fetch(`${server.url}api/health`)).json()) as { model: { frames: number } };
      expect(h2.model.frames).toBe(4);
      expect((await plan(server.url, { settings: { model: 'svd-tiny-14', width: 128, height: 64 } })).body.plan).toMatchObject({ frames: 4, decodeChunk: 4 });
    } finally {
      await server.close();
    }
  });
});
