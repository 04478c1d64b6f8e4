// Inference in worker processes, on the real server with the tiny model on the CPU, driven by real
// HTTP and socket.io clients: the server answers while a step runs, cancel does not wait for the
// step, a killed worker fails only its job, and two workers run two jobs at once.
import { readFileSync } from 'node:fs';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerStatus } from '../common/worker-protocol.js';
import { startServer, type RunningServer } from '../server/main.js';
import { workerSlots } from '../server/workers/slots.js';
import { FIXTURE_MODEL, tempDir, FIXTURE_INPUT, waitFor } from './helpers.js';

/** Worker tests wait longer: a slow job runs while others wait. */
const waitLong = <T>(fn: Parameters<typeof waitFor<T>>[0], ms = 120_000) => waitFor<T>(fn, ms);
const png = readFileSync(FIXTURE_INPUT);
const quiet = () => {};
/** Big enough frames that one UNet step of the tiny model takes seconds on this machine. */
const slow = { width: 1024, height: 512, frames: 5, steps: 4, saveToFolder: false };
const small = { width: 128, height: 64, frames: 3, steps: 2, saveToFolder: false };

type Job = Record<string, any>;
type Health = { status: string; workers: WorkerStatus[] };

async function submit(base: string, settings: object) {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(png)]), 'input.png');
  form.append('settings', JSON.stringify(settings));
  const res = await fetch(`${base}api/jobs`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as { id: string; position: number } };
}

const health = async (base: string) => (await (await fetch(`${base}api/health`)).json()) as Health;
const getJob = async (base: string, id: string) => (await (await fetch(`${base}api/jobs/${id}`)).json()) as Job;
const finished = (base: string, id: string) =>
  waitLong(async () => {
    const j = await getJob(base, id);
    return ['done', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
  }, 240_000);

/** A socket.io client watching one job, keeping its events with their arrival times. */
async function watcher(base: string, id: string) {
  const socket: Socket = ioClient(base, { transports: ['websocket'] });
  await new Promise<void>((ok, fail) => {
    socket.once('connect', () => ok());
    socket.once('connect_error', fail);
  });
  const events: { at: number; job: Job }[] = [];
  const previews: string[] = [];
  socket.on('job', (job: Job) => events.push({ at: performance.now(), job }));
  socket.on('preview', (p: { id: string }) => previews.push(p.id));
  await socket.emitWithAck('watch', id);
  const sampling = () => events.filter((e) => e.job.progress?.stage === 'sampling');
  return { socket, events, previews, sampling };
}

describe('worker slots', () => {
  it('one worker per listed card, --gpus picks cards, --workers N on the CPU, clear errors otherwise', () => {
    expect(workerSlots({ provider: 'auto' }, [0, 1])).toEqual([
      { name: 'gpu 0', deviceId: 0 },
      { name: 'gpu 1', deviceId: 1 },
    ]);
    expect(workerSlots({ provider: 'auto' }, [])).toEqual([{ name: 'worker 1' }]);
    expect(workerSlots({ provider: 'cpu' }, [0, 1])).toEqual([{ name: 'worker 1' }]);
    expect(workerSlots({ provider: 'webgpu' }, [0, 1])).toEqual([{ name: 'gpu 0', deviceId: 0 }]);
    expect(workerSlots({ provider: 'auto', gpus: [1] }, [0, 1])).toEqual([{ name: 'gpu 1', deviceId: 1 }]);
    expect(workerSlots({ provider: 'cpu', workers: 3 }, []).map((s) => s.name)).toEqual(['worker 1', 'worker 2', 'worker 3']);
    expect(() => workerSlots({ provider: 'auto', gpus: [0, 2] }, [0, 1])).toThrow(/no card 2 here \(nvidia-smi lists 0, 1\)/);
    expect(() => workerSlots({ provider: 'auto', gpus: [0] }, [])).toThrow(/lists no NVIDIA card/);
    expect(() => workerSlots({ provider: 'cpu', gpus: [0] }, [0])).toThrow(/use --workers N/);
    expect(() => workerSlots({ provider: 'auto', gpus: [0], workers: 2 }, [0])).toThrow(/give one of them/);
  });
});

describe('one CPU worker', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-workers-'), provider: 'cpu' }, quiet);
    await waitLong(async () => (await health(server.url)).status === 'ready');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers health, the page and a new job while a step runs; cancel stops the job inside that step; the next job waits for the reload', async () => {
    const a = await submit(server.url, slow);
    const w = await watcher(server.url, a.body.id);
    // Step 1 has ended (its event is here) and step 2 runs now in the worker.
    const first = await waitLong(() => w.sampling()[0], 240_000);
    const stepMs = first.job.progress.elapsedMs as number;

    const timed = async <T>(fn: () => Promise<T>) => {
      const t = performance.now();
      const value = await fn();
      return { value, ms: performance.now() - t, stepsSeen: w.sampling().length };
    };
    const h = await timed(() => health(server.url));
    const page = await timed(async () => (await fetch(server.url)).status);
    const b = await timed(() => submit(server.url, small));
    // All three came back before step 2 ended: the server did not wait for the step.
    for (const r of [h, page, b]) {
      expect(r.stepsSeen).toBe(1);
      expect(r.ms).toBeLessThan(stepMs);
    }
    expect(h.value.workers).toMatchObject([{ name: 'worker 1', state: 'ready', job: a.body.id, stage: 'sampling' }]);
    expect(page.value).toBe(200);
    expect(b.value).toMatchObject({ status: 202, body: { position: 1 } });
    const next = await watcher(server.url, b.value.body.id);

    const del = await fetch(`${server.url}api/jobs/${a.body.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    const cancelled = await waitLong(() => w.events.find((e) => e.job.status === 'cancelled'));
    // Step 2 began when step 1's event was sent; it would have run about as long as step 1.
    expect(cancelled.at - first.at).toBeLessThan(stepMs);
    expect(w.sampling()).toHaveLength(1);
    w.socket.close();

    // The worker was stopped mid-step: the next job says it waits for the reload, then runs.
    expect((await finished(server.url, b.value.body.id)).status).toBe('done');
    expect(next.events.some((e) => /restarted after a job was cancelled mid-step/.test(e.job.progress?.message ?? ''))).toBe(true);
    next.socket.close();
  }, 300_000);

  it('a killed worker fails only its job, with the reason; the server restarts it and the next job runs', async () => {
    const before = (await health(server.url)).workers[0]!;
    const { body } = await submit(server.url, slow);
    const w = await watcher(server.url, body.id);
    await waitLong(() => w.events.find((e) => ['encoding', 'sampling'].includes(e.job.progress?.stage)), 240_000);
    const pid = (await health(server.url)).workers[0]!.pid!;
    process.kill(pid, 'SIGKILL');
    const failed = await finished(server.url, body.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/the worker process \(worker 1\) was killed \(SIGKILL.*\) during this job; the server restarted it: run the job again/);
    w.socket.close();

    const restarted = await waitLong(async () => {
      const h = await health(server.url);
      return h.workers[0]!.state === 'ready' && h.workers[0]!.pid !== pid ? h.workers[0] : undefined;
    });
    expect(restarted.pid).not.toBe(before.pid);
    const next = await submit(server.url, small);
    expect((await finished(server.url, next.body.id)).status).toBe('done');
  }, 300_000);
});

describe('two CPU workers', () => {
  it('run two jobs at once, in FIFO order, each with its progress in its own room', async () => {
    const server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-workers2-'), provider: 'cpu', workers: 2 }, quiet);
    try {
      await waitLong(async () => (await health(server.url)).workers.every((x) => x.state === 'ready'));
      const medium = { width: 256, height: 128, frames: 3, steps: 5, saveToFolder: false };
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await submit(server.url, medium)).body.id);
      const [a, b, c] = ids as [string, string, string];
      const watchers = await Promise.all(ids.map((id) => watcher(server.url, id)));

      // Both workers busy at the same moment, the older job on the first, the third waiting.
      const busy = await waitLong(async () => {
        const h = await health(server.url);
        return h.workers.every((x) => x.stage === 'sampling') ? h : undefined;
      }, 240_000);
      expect(busy.workers.map((x) => x.job)).toEqual([a, b]);
      expect(busy.workers[0]!.pid).not.toBe(busy.workers[1]!.pid);
      expect((await getJob(server.url, c)).position).toBe(1);

      const [ja, jb, jc] = (await Promise.all(ids.map((id) => finished(server.url, id)))) as [Job, Job, Job];
      expect([ja.status, jb.status, jc.status]).toEqual(['done', 'done', 'done']);
      expect(ja.startedAt <= jb.startedAt && jb.startedAt <= jc.startedAt).toBe(true);
      watchers.forEach((w, k) => {
        expect(new Set(w.events.map((e) => e.job.id))).toEqual(new Set([ids[k]]));
        expect(w.sampling().map((e) => e.job.progress.step)).toEqual([1, 2, 3, 4, 5].slice(-w.sampling().length));
        expect(w.previews.every((id) => id === ids[k])).toBe(true);
        w.socket.close();
      });
    } finally {
      await server.close();
    }
  }, 300_000);
});
