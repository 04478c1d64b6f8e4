// Several boxes behind one page (issue #24), all real processes on 127.0.0.1: Debian's
// redis-server, a front server with --queue (in this process, so it can be restarted), and two
// `server/worker-box.ts` boxes with their own folders and the demo model. One Redis and one set of
// boxes serve the whole suite; the tests run in order.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Job, Queue, Worker } from 'bullmq';
import fc from 'fast-check';
import { chromium } from 'playwright-core';
import { io as ioClient, type Socket } from 'socket.io-client';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthResponse, JobSnapshot } from '../common/api-types.js';
import type { HistoryEvent } from '../common/socket-events.js';
import { encodeVideo } from '../media/ffmpeg.js';
import { LAST_FRAME_FIELD, PREFIX, QUEUE_NAME, redisConnection } from '../server/queue/redis-link.js';
import { type RunningServer, startServer } from '../server/main.js';
import { FIXTURE_INPUT, FIXTURE_MODEL, tempDir, waitFor } from './helpers.js';
import { failedBox, startBox, startRedis, type TestBox, type TestRedis } from './queue-boxes.js';

const png = readFileSync(FIXTURE_INPUT);
const TOKEN = 'queue-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const small = { width: 64, height: 64, frames: 2, steps: 1, fps: 8, saveToFolder: false };
/** Long enough on the CPU to be caught mid-sampling. */
const long = { width: 256, height: 128, frames: 8, steps: 40, fps: 8, saveToFolder: false };
const ENDED = ['done', 'failed', 'cancelled', 'interrupted'];

let redis: TestRedis;
let front: RunningServer;
const outputDir = tempDir('svd-front-');
const boxes = new Map<string, TestBox>();
const boxDirs = { 'box-a': tempDir('svd-box-a-'), 'box-b': tempDir('svd-box-b-') };

/** The front server; started again on the same port, so the boxes find it where they were told. */
const startFront = () => startServer({ model: FIXTURE_MODEL, port: front?.port ?? 0, outputDir, provider: 'cpu', token: TOKEN, queue: redis.url, jobRateLimit: 1000 }, () => {});
const addBox = async (name: 'box-a' | 'box-b') => boxes.set(name, await startBox({ name, redis: redis.url, server: front.url, token: TOKEN, workDir: boxDirs[name] }));

async function submit(settings: object, to = front.url): Promise<string> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(png)]), 'input.png');
  form.append('settings', JSON.stringify(settings));
  const res = await fetch(`${to}api/jobs`, { method: 'POST', body: form, headers: auth });
  const body = (await res.json()) as { id?: string; error?: string };
  if (!body.id) throw new Error(`submit: ${res.status} ${body.error}`);
  return body.id;
}
const getJob = async (id: string) => (await (await fetch(`${front.url}api/jobs/${id}`, { headers: auth })).json()) as JobSnapshot;
const ended = (id: string, ms = 120_000) =>
  waitFor(async () => {
    const j = await getJob(id);
    return ENDED.includes(j.status) ? j : undefined;
  }, ms);
const health = async () => (await (await fetch(`${front.url}api/health`, { headers: auth })).json()) as HealthResponse;
/** The lines of the job's log in the front server's folder. */
const jobLog = (id: string) => readFileSync(front.service.store.file(id, 'log.txt'), 'utf8').trim().split('\n');

function connect(): Promise<Socket> {
  const socket = ioClient(front.url, { auth: { token: TOKEN }, transports: ['websocket'] });
  return new Promise((ok, fail) => {
    socket.once('connect', () => ok(socket));
    socket.once('connect_error', fail);
  });
}

beforeAll(async () => {
  redis = await startRedis();
  front = await startFront();
  await Promise.all([addBox('box-a'), addBox('box-b')]);
});

afterAll(async () => {
  await Promise.all([...boxes.values()].map((b) => b.proc.stop('SIGKILL')));
  await front?.close();
  await redis?.stop();
});

describe('a front server with --queue and two worker boxes', () => {
  it('lists the boxes, their workers and what each runs in /api/health', async () => {
    const h = await waitFor(async () => {
      const r = await health();
      return r.boxes?.length === 2 && r.status === 'ready' ? r : undefined;
    });
    expect(h.boxes!.map((b) => [b.name, b.gone, b.workers.map((w) => w.name)])).toEqual([
      ['box-a', false, ['worker 1']],
      ['box-b', false, ['worker 1']],
    ]);
    expect(h.workers.map((w) => w.name)).toEqual(['box-a: worker 1', 'box-b: worker 1']);
  });

  it('runs a job of two segments on a box, with each seed, and continues it from the last frame the box sent', async () => {
    const id = await submit({ ...small, frames: 3, extend: 2, seed: 11 });
    const done = await ended(id);
    expect(done).toMatchObject({ status: 'done', seed: 11 });
    expect(done.seeds).toHaveLength(2);
    expect(done.seeds![0]).toBe(11);
    const { data, info } = await sharp(readFileSync(front.service.store.file(id, 'last-frame.png')))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, data.length]).toEqual([64, 64, 64 * 64 * 3]);
    const res = await fetch(`${front.url}api/jobs/${id}/continue`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(202);
    const next = await ended(((await res.json()) as { id: string }).id);
    expect(next).toMatchObject({ status: 'done', continues: id });
  });

  it('shows the boxes on the page, and which box made a job', async () => {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
      await page.goto(`${front.url}?token=${TOKEN}`);
      await page.waitForSelector('[data-testid=boxes]:has-text("box-b")');
      // The page reads the boxes again every 5 s: both show up free once their models are loaded.
      await waitFor(async () => /box-a · worker 1: free.*box-b · worker 1: free/.test((await page.textContent('[data-testid=boxes]')) ?? ''), 30_000);
      await page.setInputFiles('[data-testid=file-input]', FIXTURE_INPUT);
      await page.waitForSelector('[data-testid=model-input]');
      await page.click('details.advanced summary');
      for (const [k, v] of Object.entries({ width: 64, height: 64, steps: 2 })) await page.fill(`#f-${k}`, String(v));
      await page.click('[data-testid=run]');
      await page.waitForSelector('[data-testid=ran-on]:has-text("Made on box-")', { timeout: 60_000 });
      expect(await page.textContent('[data-testid=ran-on]')).toMatch(/^Made on box-[ab] \(worker 1\)$/);
      await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'boxes-1366x900.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('runs 20 jobs from the API once each, spread over both boxes, and every watcher gets every event', async () => {
    // The queue is held (BullMQ's pause) while the jobs go in and the watchers join them.
    const queue = new Queue(QUEUE_NAME, { connection: redisConnection(redis.url), prefix: PREFIX });
    await queue.pause();
    const watchers = await Promise.all([connect(), connect(), connect()]);
    try {
      const history = watchers.map(() => new Map<string, string[]>());
      const received = watchers.map(() => new Map<string, number>());
      const last = watchers.map(() => new Map<string, JobSnapshot>());
      watchers.forEach((s, k) => {
        s.on('history', (e: HistoryEvent) => history[k]!.set(e.id, [...(history[k]!.get(e.id) ?? []), e.status ?? 'removed']));
        s.on('job', (j: JobSnapshot) => {
          received[k]!.set(j.id, (received[k]!.get(j.id) ?? 0) + 1);
          last[k]!.set(j.id, j);
        });
      });
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push(await submit({ ...small, seed: i }));
      expect((await getJob(ids[19]!)).position).toBe(20);
      for (const s of watchers) for (const id of ids) expect(((await s.emitWithAck('watch', id)) as { job?: JobSnapshot }).job?.status).toBe('queued');
      const sent = new Map<string, number>();
      front.service.on('update', (j) => sent.set(j.id, (sent.get(j.id) ?? 0) + 1));
      received.forEach((r) => r.clear());
      await queue.resume();

      const jobs = await Promise.all(ids.map((id) => ended(id)));
      await new Promise((r) => setTimeout(r, 300));
      expect(jobs.map((j) => j.status)).toEqual(ids.map(() => 'done'));
      const byBox = new Map<string, number>();
      for (const j of jobs) byBox.set(j.ranOn!.box, (byBox.get(j.ranOn!.box) ?? 0) + 1);
      expect([...byBox.keys()].sort()).toEqual(['box-a', 'box-b']);
      for (const j of jobs) {
        // Listed once: one "done" in its log, one video, checked on the front server.
        expect(jobLog(j.id).filter((l) => / done$/.test(l))).toHaveLength(1);
        expect(jobLog(j.id).some((l) => l.includes(`videos received from ${j.ranOn!.box} and checked`))).toBe(true);
        expect(existsSync(front.service.store.file(j.id, 'video.mp4'))).toBe(true);
      }
      const video = await fetch(`${front.url}api/jobs/${ids[0]}/video.mp4`, { headers: auth });
      expect(video.status).toBe(200);
      expect((await video.arrayBuffer()).byteLength).toBeGreaterThan(0);
      // Every watcher: each job's history queued → running → done, and every event sent since it joined.
      for (let k = 0; k < watchers.length; k++) {
        for (const id of ids) {
          expect(history[k]!.get(id)).toEqual(['queued', 'running', 'done']);
          expect(received[k]!.get(id)).toBe(sent.get(id));
          expect(last[k]!.get(id)?.status).toBe('done');
        }
      }
      expect([...sent.values()].every((n) => n >= 3)).toBe(true);
    } finally {
      watchers.forEach((s) => s.close());
      await queue.close();
    }
  });

  it('hands the job of a box killed mid-job (kill -9) to the other box, which finishes it once', async () => {
    const id = await submit(long);
    const running = await waitFor(async () => {
      const j = await getJob(id);
      return j.status === 'running' && j.progress?.stage === 'sampling' && j.ranOn ? j : undefined;
    });
    const lost = running.ranOn!.box;
    const other = lost === 'box-a' ? 'box-b' : 'box-a';
    process.kill(boxes.get(lost)!.pid, 'SIGKILL');
    const job = await ended(id, 180_000);
    expect(job.status).toBe('done');
    expect(job.ranOn?.box).toBe(other);
    const log = jobLog(id);
    expect(log.some((l) => l.includes(`${lost} stopped answering`))).toBe(true);
    expect(log.filter((l) => / done$/.test(l))).toHaveLength(1);
    // The box that went is shown as gone once its report expires; started again, it is back.
    await waitFor(async () => (await health()).boxes?.find((b) => b.name === lost)?.gone, 60_000);
    await addBox(lost as 'box-a' | 'box-b');
    await waitFor(async () => (await health()).boxes?.find((b) => b.name === lost)?.gone === false);
  });

  it('fails a job with the reason when the box it went to stops answering too', async () => {
    const id = await submit(long);
    const onBox = (box?: string) =>
      waitFor(async () => {
        const j = await getJob(id);
        return j.status === 'running' && j.progress?.stage === 'sampling' && j.ranOn && (!box || j.ranOn.box === box) ? j : undefined;
      }, 90_000);
    const first = (await onBox()).ranOn!.box as 'box-a' | 'box-b';
    const second = first === 'box-a' ? 'box-b' : 'box-a';
    process.kill(boxes.get(first)!.pid, 'SIGKILL');
    await onBox(second);
    process.kill(boxes.get(second)!.pid, 'SIGKILL');
    // No box is left to notice; the first one back runs BullMQ's stalled-job check.
    await addBox(first);
    const job = await ended(id, 60_000);
    expect(job.status).toBe('failed');
    expect(job.error).toMatch(/the worker boxes running this job stopped answering .* twice/);
    await addBox(second);
  });

  it('sends a cancel to the box that runs the job, which stops it and takes the next; the previews reach the page', async () => {
    const id = await submit(long);
    const watcher = await connect();
    const previews: string[] = [];
    watcher.on('preview', (p: { id: string; url: string }) => p.id === id && previews.push(p.url));
    await watcher.emitWithAck('watch', id);
    const running = await waitFor(async () => {
      const j = await getJob(id);
      return j.status === 'running' && j.progress?.stage === 'sampling' && j.progress.step >= 2 && j.ranOn ? j : undefined;
    });
    await waitFor(() => previews.length > 0, 30_000);
    expect(previews[0]).toMatch(/^data:image\/jpeg;base64,/);
    watcher.close();
    const res = await fetch(`${front.url}api/jobs/${id}`, { method: 'DELETE', headers: auth });
    expect(res.status).toBe(200);
    const job = await ended(id, 30_000);
    expect(job.status).toBe('cancelled');
    const box = boxes.get(running.ranOn!.box)!;
    await box.proc.waitFor(new RegExp(`job ${id} stopped \\(cancelled\\)`), 10_000);
    // Both boxes take work again.
    const next = await Promise.all([submit(small), submit(small)]);
    for (const n of next) expect((await ended(n)).status).toBe('done');
  });

  it('keeps the queued jobs through a Redis restart and a front server restart, and a running one through a front server restart', async () => {
    await Promise.all([...boxes.values()].map((b) => b.proc.stop('SIGTERM')));
    boxes.clear();
    const ids = [await submit(small), await submit(small), await submit(small)];
    expect((await getJob(ids[2]!)).position).toBe(3);
    await redis.restart();
    await front.close();
    front = await startFront();
    const h = await health();
    expect(h.queue.waiting).toBe(3);
    expect((await Promise.all(ids.map(getJob))).map((j) => [j.status, j.position])).toEqual([
      ['queued', 1],
      ['queued', 2],
      ['queued', 3],
    ]);
    await addBox('box-a');
    for (const id of ids) expect((await ended(id)).status).toBe('done');
    expect((await health()).queue.waiting).toBe(0);

    // A job running on a box while the front server restarts: the box delivers it when it is back.
    const id = await submit(long);
    await waitFor(async () => {
      const j = await getJob(id);
      return j.status === 'running' && j.progress?.stage === 'sampling' ? j : undefined;
    });
    await front.close();
    front = await startFront();
    const job = await ended(id, 120_000);
    expect(job.status).toBe('done');
    expect(job.ranOn?.box).toBe('box-a');
    expect(jobLog(id).filter((l) => / done$/.test(l))).toHaveLength(1);
  });

  it("hears a box about a job only while it holds BullMQ's lock on it", async () => {
    const id = await submit(small);
    const job = await ended(id);
    const asBox = { ...auth, 'x-svd-box': 'intruder', 'x-svd-worker': 'gpu 0', 'x-svd-lock': 'guessed' };
    const input = await fetch(`${front.url}api/boxes/jobs/${id}/input.png`, { headers: asBox });
    expect(input.status).toBe(409);
    expect(((await input.json()) as { error: string }).error).toMatch(/not held by intruder/);
    const form = new FormData();
    form.append('result', JSON.stringify({ frameCount: 2, fps: 8, seed: 1, provider: 'x', totalMs: 1 }));
    form.append('mp4', new Blob([new Uint8Array(16)]), 'video.mp4');
    const result = await fetch(`${front.url}api/boxes/jobs/${id}/result`, { method: 'POST', headers: asBox, body: form });
    expect(result.status).toBe(409);
    expect((await fetch(`${front.url}api/boxes/jobs/${id}/input.png`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${front.url}api/boxes/jobs/${id}/input.png`, { headers: { ...asBox, authorization: 'Bearer wrong-token' } })).status).toBe(401);
    expect(await getJob(id)).toEqual(job);
  });

  it("runs the front server's own workers as one more box when --workers asks (another Redis database: one queue per front server)", async () => {
    const own = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-front2-'), provider: 'cpu', token: TOKEN, queue: `${redis.url}/1`, workers: 1 }, () => {});
    try {
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(png)]), 'input.png');
      form.append('settings', JSON.stringify(small));
      const { id } = (await (await fetch(`${own.url}api/jobs`, { method: 'POST', body: form, headers: auth })).json()) as { id: string };
      const job = await waitFor(async () => {
        const j = (await (await fetch(`${own.url}api/jobs/${id}`, { headers: auth })).json()) as JobSnapshot;
        return ENDED.includes(j.status) ? j : undefined;
      });
      expect(job.status).toBe('done');
      expect(job.ranOn?.box).toMatch(/-front$/);
    } finally {
      await own.close();
    }
  });

  it('refuses a box with a wrong token before it takes any job', async () => {
    const { code, out } = await failedBox([
      '--queue',
      redis.url,
      '--server',
      front.url,
      '--token',
      'not-the-token',
      '--workers',
      '1',
      '--provider',
      'cpu',
      '--model',
      FIXTURE_MODEL,
      '--work-dir',
      tempDir(),
    ]);
    expect(code).toBe(1);
    expect(out).toMatch(/refused the token/);
    expect((await failedBox(['--queue', 'http://127.0.0.1:1', '--server', front.url, '--token', TOKEN])).out).toMatch(/--queue: give the Redis address as redis:\/\/HOST:PORT/);
  });
});

// A box's upload as the front server's route takes it, sent by hand: a BullMQ worker of the test's
// own holds the lock (BullMQ's manual processing), and the requests carry the token and headers a
// box sends. On another Redis database with a front server of its own (one queue per front
// server), so the suite's boxes never take these jobs.
describe("a box's result with a bad last frame", () => {
  let own: RunningServer;
  let taker: Worker;
  let mp4: Uint8Array;
  const frame = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: { r: 30, g: 90, b: 200 } } });
  const result = JSON.stringify({ frameCount: 2, fps: 8, seed: 1, provider: 'cpu', totalMs: 5 });

  beforeAll(async () => {
    own = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-front-frames-'), provider: 'cpu', token: TOKEN, queue: `${redis.url}/2`, jobRateLimit: 1000 }, () => {});
    taker = new Worker(QUEUE_NAME, null, { connection: redisConnection(`${redis.url}/2`), prefix: PREFIX, lockDuration: 120_000 });
    const path = join(tempDir(), 'video.mp4');
    await encodeVideo({ rgb: new Uint8Array(64 * 64 * 3 * 2).fill(120), frameCount: 2, width: 64, height: 64, fps: 8 }, path, 'mp4');
    mp4 = new Uint8Array(readFileSync(path));
  });
  afterAll(async () => {
    await taker?.close();
    await own?.close();
  });

  /** A job of `small` (64x64, 2 frames, mp4), taken and claimed as a box does: the lock on it, the box's headers. */
  async function takeJob(): Promise<{ id: string; job: Job; lock: string; deliver: (form: FormData) => Promise<{ status: number; body: Record<string, unknown> }> }> {
    const id = await submit(small, own.url);
    const lock = `hand-made-lock-${id}`;
    const job = await waitFor(() => taker.getNextJob(lock, { block: false }));
    expect(job.id).toBe(id);
    const headers = { ...auth, 'x-svd-box': 'hand-box', 'x-svd-worker': 'worker 1', 'x-svd-lock': lock };
    expect((await fetch(`${own.url}api/boxes/jobs/${id}/input.png`, { headers })).status).toBe(200);
    const deliver = async (form: FormData) => {
      const res = await fetch(`${own.url}api/boxes/jobs/${id}/result`, { method: 'POST', headers, body: form });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    return { id, job, lock, deliver };
  }
  const ownJob = async (id: string) => (await (await fetch(`${own.url}api/jobs/${id}`, { headers: auth })).json()) as JobSnapshot;
  /** The result fields a box sends, with the last frame (or none) and any field added after them. */
  function resultForm(lastFrame: Uint8Array | undefined, more: [string, Uint8Array | string][] = [], resultText = result): FormData {
    const form = new FormData();
    form.set('result', resultText);
    form.append('mp4', new Blob([new Uint8Array(mp4)]), 'video.mp4');
    if (lastFrame) form.append(LAST_FRAME_FIELD, new Blob([new Uint8Array(lastFrame)]), 'last-frame.png');
    for (const [name, data] of more) {
      if (typeof data === 'string') form.append(name, data);
      else form.append(name, new Blob([new Uint8Array(data)]), 'x.bin');
    }
    return form;
  }
  const leftovers = (id: string) => readdirSync(own.service.store.dir(id)).filter((f) => f.startsWith('.upload-'));

  it('keeps the videos and refuses the frame, saying why: not a PNG, another size, cut off, too large, or none at all', async () => {
    const good = await frame(64, 64).png().toBuffer();
    const noisy = await sharp({ create: { width: 64, height: 64, channels: 3, background: 'black', noise: { type: 'gaussian', mean: 128, sigma: 60 } } })
      .png()
      .toBuffer();
    const cases: [string, Uint8Array | undefined, RegExp][] = [
      ['a JPEG', await frame(64, 64).jpeg().toBuffer(), /^the last frame hand-box sent is not a PNG$/],
      ['bytes that are no picture', new Uint8Array(5000).fill(7), /^the last frame hand-box sent is not a PNG$/],
      ['a PNG of another size', await frame(128, 64).png().toBuffer(), /^the last frame hand-box sent is 128x64, not the job's 64x64$/],
      ['a PNG cut off in its pixels', noisy.subarray(0, noisy.length >> 1), /^the last frame hand-box sent is a damaged PNG \(.+\)$/],
      ['a PNG with 2 MB after it', Buffer.concat([good, Buffer.alloc(2 ** 21, 1)]), /^the last frame hand-box sent is 2\.0 MB, more than a 64x64 PNG can be$/],
      ['no last frame beside the video', undefined, /^hand-box sent no last frame \(field "lastFrame"; is the box the same version as the front server\?\)$/],
    ];
    for (const [what, lastFrame, why] of cases) {
      const { id, job, lock, deliver } = await takeJob();
      const answer = await deliver(resultForm(lastFrame));
      expect(answer.status, what).toBe(200);
      expect(answer.body, what).toEqual({ id, done: true, lastFrameRefused: expect.stringMatching(why) });
      // The box then completes the job in BullMQ, as after any delivery.
      await job.moveToCompleted('delivered', lock, false);
      expect(await ownJob(id), what).toMatchObject({ status: 'done', videos: { mp4: 'video.mp4' } });
      const video = await fetch(`${own.url}api/jobs/${id}/video.mp4`, { headers: auth });
      expect(Buffer.from(await video.arrayBuffer()).equals(mp4), what).toBe(true);
      expect(existsSync(own.service.store.file(id, 'last-frame.png')), what).toBe(false);
      expect(leftovers(id), what).toEqual([]);
      const log = readFileSync(own.service.store.file(id, 'log.txt'), 'utf8');
      expect(log, what).toContain(`${answer.body.lastFrameRefused}: not kept; the videos are, but this job cannot be continued`);
      const more = await fetch(`${own.url}api/jobs/${id}/continue`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
      expect(more.status, what).toBe(410);
      expect(((await more.json()) as { error: string }).error).toBe(
        `the last frame of job ${id} is not on the server (the worker box that made it (hand-box) sent none the server could use); run the job again first`,
      );
    }
    expect((await fetch(`${own.url}api/health`, { headers: auth })).status).toBe(200);
  });

  it('refuses an upload with a field repeated, or a result of the wrong shape, as a whole, leaving the job to the box, which then delivers it with its frame', async () => {
    const { id, job, lock, deliver } = await takeJob();
    const good = await frame(64, 64).png().toBuffer();
    const cases: [string, FormData, RegExp][] = [
      [
        'the last frame twice',
        resultForm(good, [[LAST_FRAME_FIELD, good]]),
        /^the file "lastFrame" came more than once; send "result" once, each video format the job asked for once and "lastFrame" once$/,
      ],
      ['the video twice', resultForm(good, [['mp4', mp4]]), /^the file "mp4" came more than once; send /],
      ['the result twice', resultForm(good, [['result', result]]), /^the upload has more parts than a result has \(.+\); send "result" once/],
      ['the last frame as text', resultForm(undefined, [[LAST_FRAME_FIELD, 'iVBORw0KGgo=']]), /^the upload has more parts than a result has/],
      ['a result that is a list', resultForm(good, [], '[1]'), /^bad result: result must be a JSON object \{frameCount, fps, seed, seeds\?, provider, totalMs\}$/],
      ['a result that is not JSON', resultForm(good, [], '{frameCount: 2}'), /^send the result as JSON in the "result" field beside the videos$/],
    ];
    for (const [what, form, message] of cases) {
      const answer = await deliver(form);
      expect(answer.status, what).toBe(400);
      expect(answer.body.error, what).toMatch(message);
      expect((await ownJob(id)).status, what).toBe('running');
      expect(leftovers(id), what).toEqual([]);
    }
    // A result that says more frames than the video holds: the video is refused as not what it says.
    const tooMany = await deliver(resultForm(good, [], JSON.stringify({ frameCount: 3, fps: 8, seed: 0, provider: '', totalMs: 0 })));
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.error).toMatch(/^video\.mp4 from hand-box does not hold the video its result describes: it holds 2 of 3 frames/);
    expect(leftovers(id)).toEqual([]);
    // The "result" field of every type and value (never the 2 frames the video has): refused with what was wrong.
    const results = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            frameCount: fc.oneof(fc.integer({ min: 3 }), fc.integer({ max: 1 }), fc.double(), fc.string()),
            fps: fc.oneof(fc.double(), fc.constant(8)),
            seed: fc.oneof(fc.integer(), fc.double()),
            provider: fc.string({ maxLength: 300 }),
            totalMs: fc.double(),
          },
          { requiredKeys: [] },
        )
        .map((r) => JSON.stringify(r)),
      fc.string({ maxLength: 80 }),
    );
    await fc.assert(
      fc.asyncProperty(results, async (text) => {
        const answer = await deliver(resultForm(good, [], text));
        expect([400, 422], text).toContain(answer.status);
        expect(answer.body.error, text).toMatch(/^(bad result: \S|send the result as JSON in the "result" field beside the videos$|video\.mp4 from hand-box )/);
        expect(leftovers(id), text).toEqual([]);
      }),
      { numRuns: 40 },
    );
    expect((await ownJob(id)).status).toBe('running');
    const answer = await deliver(resultForm(good));
    expect(answer).toEqual({ status: 200, body: { id, done: true } });
    await job.moveToCompleted('delivered', lock, false);
    expect(await ownJob(id)).toMatchObject({ status: 'done', videos: { mp4: 'video.mp4' } });
    expect(readFileSync(own.service.store.file(id, 'last-frame.png')).equals(good)).toBe(true);
    const more = await fetch(`${own.url}api/jobs/${id}/continue`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    expect(more.status).toBe(202);
    // Nothing takes the continuation here: cancelled while it waits.
    const next = ((await more.json()) as { id: string }).id;
    expect((await fetch(`${own.url}api/jobs/${next}`, { method: 'DELETE', headers: auth })).status).toBe(200);
  });
});
