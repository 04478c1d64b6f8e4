// A worker box: a BullMQ Worker in front of this machine's inference workers (the same worker
// processes and protocol as a single server's, server/workers/pool.ts). Each job it takes is
// claimed from the front server over HTTP (which hands over the input picture), run on a free
// worker, encoded here with ffmpeg (job-finisher.ts, as the front server encodes its own), and
// uploaded to the front server, which checks the videos before listing the job. Progress goes
// back through BullMQ (job.updateProgress), previews through a Redis channel; a cancel arrives
// on another channel and reaches the job through BullMQ's worker.cancelJob. The box only
// connects out (to Redis and the front server): it needs no open port.
import { once } from 'node:events';
import { openAsBlob } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { BoxProgress, BoxReport } from '../../common/boxes.js';
import { FRAMES_FILE, JobFinisher, LAST_FRAME_FILE } from '../jobs/job-finisher.js';
import type { JobRecord } from '../jobs/job.js';
import { JobStore } from '../jobs/job-store.js';
import { type InferenceWorker, JobCancelledError, type WorkerPool } from '../workers/pool.js';
import {
  BOX_HEADERS,
  BOXES_KEY,
  type BoxResult,
  CANCEL_CHANNEL,
  GONE_AFTER_MS,
  LAST_FRAME_FIELD,
  PREFIX,
  PREVIEW_CHANNEL,
  QUEUE_NAME,
  REPORT_EVERY_MS,
  aliveKey,
  boxJobSchema,
  redisConnection,
  redisLabel,
} from './redis-link.js';

export interface BoxAgentOptions {
  /** The queue's Redis (redis://…). */
  redisUrl: string;
  /** The front server's URL, and its access token. */
  server: string;
  token: string;
  /** This box's name on the page (unique among the boxes). */
  name: string;
  pool: WorkerPool;
  /** The models the pool's workers have, by name. */
  models: string[];
  /** The NVIDIA cards of this box. */
  cards: BoxReport['cards'];
  /** Where a job's input, frames and videos stay while it runs here. */
  workDir: string;
  /**
   * BullMQ's lock on a job: renewed every half of it while the box runs the job; a box that stops
   * answering for longer loses the job to another box (the stalled-job check, run as often).
   */
  lockMs?: number;
  /** How long the front server may be unreachable (restarting) before a job gives up on it. */
  serverPatienceMs?: number;
  log: (line: string) => void;
}

/** The front server said the job was cancelled. */
class CancelledByServer extends Error {}

/** Why a job stopped: "cancelled" (by its user, which the front server reads as such), or BullMQ's reason (a lost lock). */
const stopReason = (stop: AbortSignal): string => (stop.aborted && stop.reason !== 'cancelled' ? String(stop.reason) : 'cancelled');

export class BoxAgent {
  private worker: Worker | undefined;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly store: JobStore;
  private readonly finisher: JobFinisher;
  /** Workers promised to jobs that have not reached them yet. */
  private readonly taken = new Set<InferenceWorker>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly opts: BoxAgentOptions) {
    const connection = redisConnection(opts.redisUrl);
    this.redis = new Redis(connection);
    this.subscriber = new Redis(connection);
    const said = new Set<string>();
    const onError = (err: Error) => {
      const line = `box ${opts.name}: Redis (${redisLabel(opts.redisUrl)}): ${err.message}`;
      if (!said.has(line)) opts.log(line);
      said.add(line);
    };
    this.redis.on('error', onError);
    this.subscriber.on('error', onError);
    this.store = new JobStore(opts.workDir);
    this.store.load();
    // One encode per worker, as on a single server.
    this.finisher = new JobFinisher({ store: this.store, maxEncodes: opts.pool.workers.length, onSaved: () => {} });
  }

  get name() {
    return this.opts.name;
  }

  async start(): Promise<void> {
    const { opts } = this;
    // The token and the address are checked before any job is taken: a box that cannot deliver must not take jobs.
    await this.call('api/health', { headers: { authorization: `Bearer ${opts.token}` } }, new AbortController().signal);
    await this.report();
    this.heartbeat = setInterval(() => void this.report().catch(() => {}), REPORT_EVERY_MS);
    this.subscriber.on('message', (channel, id) => {
      if (channel === CANCEL_CHANNEL) this.worker?.cancelJob(id, 'cancelled');
    });
    await this.subscriber.subscribe(CANCEL_CHANNEL);
    const lockMs = opts.lockMs ?? 30_000;
    const worker = new Worker(QUEUE_NAME, (job, token, signal) => this.process(job, token, signal), {
      connection: redisConnection(opts.redisUrl),
      prefix: PREFIX,
      name: opts.name,
      concurrency: opts.pool.workers.length,
      lockDuration: lockMs,
      stalledInterval: lockMs,
      // A job whose box stopped answering is run once more, on another box; a second time, it fails.
      maxStalledCount: 1,
    });
    this.worker = worker;
    worker.on('error', (err) => opts.log(`box ${opts.name}: queue: ${err.message}`));
    // BullMQ's advice: a job whose lock could not be renewed belongs to the stalled-job check now.
    worker.on('lockRenewalFailed', (ids) => {
      for (const id of ids) worker.cancelJob(id, 'the lock on the job was lost');
    });
    await worker.waitUntilReady();
    opts.log(`box ${opts.name}: taking jobs from ${redisLabel(opts.redisUrl)} for ${opts.server} with ${opts.pool.workers.map((w) => w.name).join(', ')}`);
  }

  /**
   * Writes this box's report to Redis, with an expiry that says it is alive. A box whose every
   * worker failed to load its model takes no jobs (they would all fail here) until one is back.
   */
  private async report(): Promise<void> {
    const broken = this.opts.pool.workers.every((w) => w.failed);
    if (this.worker && broken !== this.worker.isPaused()) {
      if (broken) {
        this.opts.log(`box ${this.name}: no worker here could load its model; taking no jobs until one can (see /api/health)`);
        await this.worker.pause(true);
      } else this.worker.resume();
    }
    const report: BoxReport = { name: this.opts.name, at: Date.now(), startedAt: this.startedAt, cards: this.opts.cards, workers: this.opts.pool.status() };
    await this.redis.multi().hset(BOXES_KEY, this.opts.name, JSON.stringify(report)).set(aliveKey(this.opts.name), '1', 'PX', GONE_AFTER_MS).exec();
  }

  private async takeWorker(model: string, signal: AbortSignal): Promise<InferenceWorker> {
    for (;;) {
      const w = this.opts.pool.firstFree(model, this.taken);
      if (w) {
        this.taken.add(w);
        return w;
      }
      await once(this.opts.pool, 'free', { signal });
    }
  }

  private async process(job: Job, lock: string | undefined, signal: AbortSignal | undefined): Promise<{ box: string; worker: string }> {
    const parsed = boxJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`the queue holds a job this box cannot read (${parsed.error.issues[0]?.message}); is the front server the same version?`);
    const { jobId, model, settings } = parsed.data;
    if (!this.opts.models.includes(model)) {
      throw new UnrecoverableError(`worker box ${this.name} has no model "${model}" (it has ${this.opts.models.join(', ')}); install it there, or run the job with one it has`);
    }
    const stop = signal ?? new AbortController().signal;
    // Cancelled while waiting for a worker: nothing ran.
    const worker = await this.takeWorker(model, stop).catch(() => {
      throw new UnrecoverableError(stopReason(stop));
    });
    const headers = {
      authorization: `Bearer ${this.opts.token}`,
      [BOX_HEADERS.box]: encodeURIComponent(this.name),
      [BOX_HEADERS.worker]: encodeURIComponent(worker.name),
      [BOX_HEADERS.lock]: encodeURIComponent(lock ?? ''),
    };
    const progress = (p: BoxProgress) => void job.updateProgress(p).catch(() => {});
    const record: JobRecord = { id: jobId, status: 'running', createdAt: new Date().toISOString(), settings, videos: {}, inputName: 'input.png' };
    let created = false;
    try {
      const input = await this.call(`api/boxes/jobs/${jobId}/input.png`, { headers }, stop);
      this.store.create(record, { 'input.png': new Uint8Array(await input.arrayBuffer()) });
      created = true;
      this.opts.log(`box ${this.name}: job ${jobId} on ${worker.name}`);
      const result = await worker.run(
        { jobId, model, imagePath: this.store.file(jobId, 'input.png'), framesPath: this.store.file(jobId, FRAMES_FILE), settings },
        { progress, preview: (url) => void this.redis.publish(PREVIEW_CHANNEL, JSON.stringify({ jobId, url })).catch(() => {}) },
        stop,
      );
      this.taken.delete(worker);
      progress({ stage: 'writing', message: `writing video files on ${this.name}` });
      await this.finisher.encode(
        record,
        result,
        stop,
        () => progress({ stage: 'writing', message: `waiting for another job to finish writing its video on ${this.name}` }),
        (format) => progress({ stage: 'writing', message: `writing video.${format} on ${this.name}`, format }),
      );
      progress({ stage: 'writing', message: `sending the videos from ${this.name} to the front server` });
      const form = new FormData();
      const delivered: BoxResult = { frameCount: result.frameCount, fps: result.fps, seed: result.seed, seeds: result.seeds, provider: result.provider, totalMs: result.totalMs };
      form.set('result', JSON.stringify(delivered));
      for (const [format, name] of Object.entries(record.videos)) form.set(format, await openAsBlob(this.store.file(jobId, name)), name);
      // What "Continue from the last frame" starts from, as a local job keeps it.
      form.set(LAST_FRAME_FIELD, await openAsBlob(this.store.file(jobId, LAST_FRAME_FILE)), LAST_FRAME_FILE);
      const answer = (await (await this.call(`api/boxes/jobs/${jobId}/result`, { method: 'POST', headers, body: form }, stop)).json().catch(() => ({}))) as { lastFrameRefused?: unknown };
      const refused = typeof answer.lastFrameRefused === 'string' ? `; the front server kept the videos but not the last frame: ${answer.lastFrameRefused}` : '';
      this.opts.log(`box ${this.name}: job ${jobId} delivered${refused}`);
      return { box: this.name, worker: worker.name };
    } catch (err) {
      if (err instanceof CancelledByServer || err instanceof JobCancelledError || stop.aborted) {
        this.opts.log(`box ${this.name}: job ${jobId} stopped (${stopReason(stop)})`);
        throw new UnrecoverableError(stopReason(stop));
      }
      const message = (err as Error).message;
      this.opts.log(`box ${this.name}: job ${jobId} failed: ${message}`);
      throw new UnrecoverableError(message);
    } finally {
      this.taken.delete(worker);
      await this.finisher.removeFrames(record);
      if (created) this.store.remove(jobId);
    }
  }

  /**
   * A request to the front server; retried while it cannot be reached or answers 5xx (it may be
   * restarting), for serverPatienceMs. A refusal (4xx) ends the job with the server's reason.
   */
  private async call(path: string, init: RequestInit, signal: AbortSignal): Promise<Response> {
    const url = new URL(path, this.opts.server);
    const deadline = Date.now() + (this.opts.serverPatienceMs ?? 120_000);
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      let why: string;
      try {
        const res = await fetch(url, { ...init, signal });
        if (res.ok) return res;
        const body = (await res.json().catch(() => ({}))) as { error?: unknown };
        why = typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
        if (res.status === 409 && why === 'cancelled') throw new CancelledByServer();
        if (res.status === 401) throw new Error(`the front server ${this.opts.server} refused the token: ${why}; start the box with the token the front server printed`);
        if (res.status < 500) throw new Error(`the front server refused it: ${why}`);
      } catch (err) {
        if (signal.aborted || !(err instanceof TypeError)) throw err;
        // fetch's network failures are TypeErrors, with the reason in their cause.
        why = ((err as Error & { cause?: Error }).cause ?? err).message;
      }
      if (Date.now() > deadline)
        throw new Error(`the front server ${this.opts.server} could not be reached (${why}); the box gave up after ${Math.round((this.opts.serverPatienceMs ?? 120_000) / 1000)} s`);
      await sleep(Math.min(500 * 2 ** attempt, 10_000), undefined, { signal });
    }
  }

  /**
   * Stops taking jobs. `wait`: lets the running ones finish first (BullMQ's graceful close);
   * otherwise they are left to the stalled-job check, which hands them to another box.
   */
  async close(wait = true): Promise<void> {
    clearInterval(this.heartbeat);
    await this.worker?.close(!wait);
    await this.redis
      .multi()
      .hdel(BOXES_KEY, this.opts.name)
      .del(aliveKey(this.opts.name))
      .exec()
      .catch(() => {});
    this.subscriber.disconnect();
    this.redis.disconnect();
  }
}
