// The queue of a front server started with --queue redis://…: jobs go into a BullMQ queue in Redis
// and worker boxes (server/worker-box.ts) take them. The front server keeps every record; it hears
// what happens to its jobs through BullMQ's QueueEvents (a Redis stream, so nothing is lost while
// it reconnects), previews through a Redis channel, and the results through its own HTTP API
// (box-routes.ts), where a box must hold BullMQ's lock on the job to claim it or deliver it.
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { boxProgressSchema, boxReportSchema, type BoxStatus, type RanOn } from '../../common/boxes.js';
import type { JobHost, JobQueue } from '../jobs/job-queue.js';
import type { JobRecord } from '../jobs/job.js';
import {
  BOXES_KEY,
  type BoxJob,
  CANCEL_CHANNEL,
  FORGET_AFTER_MS,
  PREFIX,
  PREVIEW_CHANNEL,
  QUEUE_NAME,
  aliveKey,
  failedReasonInWords,
  previewMessageSchema,
  redisConnection,
  redisLabel,
} from './redis-link.js';

export interface RedisQueueOptions {
  url: string;
  /** The model a job that names none runs with (the front server's default), so every box runs the same. */
  defaultModel: string;
  log: (line: string) => void;
}

/** Why a box may not claim or deliver a job; `status` is the HTTP answer. */
export class ClaimError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** How long the server waits for its queue's Redis at start. */
const CONNECT_TIMEOUT_MS = 15_000;

const JOB_OPTIONS = {
  // A job that fails is not run again behind the user's back; only a box that stops answering
  // hands its job on (BullMQ's stalled-job check, once: maxStalledCount on the boxes).
  attempts: 1,
  // The front server keeps the records; Redis keeps ended jobs only long enough to be looked at.
  removeOnComplete: { age: 24 * 3600 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export class RedisQueue implements JobQueue {
  /** The jobs waiting in Redis, next first, as this server last heard. */
  private readonly waitingIds: string[] = [];
  /** Jobs a box holds, in the order they started. */
  private readonly runningIds = new Set<string>();
  /** Running jobs asked to stop, until their box says it stopped. */
  private readonly cancelling = new Set<string>();
  private readonly queue: Queue;
  private events: QueueEvents | undefined;
  /** Commands (publish, reads) on a connection of our own, so BullMQ's are left as it set them. */
  private readonly redis: Redis;
  /** Subscriptions need a connection to themselves. */
  private readonly subscriber: Redis;
  readonly label: string;

  constructor(
    private readonly host: JobHost,
    private readonly opts: RedisQueueOptions,
  ) {
    const connection = redisConnection(opts.url);
    this.label = redisLabel(opts.url);
    this.queue = new Queue(QUEUE_NAME, { connection, prefix: PREFIX, defaultJobOptions: JOB_OPTIONS });
    this.redis = new Redis(connection);
    this.subscriber = new Redis(connection);
    const said = new Set<string>();
    // ioredis reconnects by itself; each kind of connection error is said once, not at every retry.
    const onError = (what: string) => (err: Error) => {
      const line = `queue: ${what} (${this.label}): ${err.message}`;
      if (said.has(line)) return;
      said.add(line);
      opts.log(line);
    };
    this.queue.on('error', onError('Redis'));
    this.redis.on('error', onError('Redis'));
    this.subscriber.on('error', onError('Redis'));
  }

  get waiting() {
    return this.waitingIds.length;
  }

  get runningId(): string | undefined {
    // A job is listed as done when its videos arrive, a moment before BullMQ says it completed.
    for (const id of this.runningIds) if (this.host.store.get(id)?.status === 'running') return id;
    return undefined;
  }

  position(id: string): number {
    return this.waitingIds.indexOf(id) + 1;
  }

  /**
   * Connects, brings the records of unfinished jobs in line with what Redis holds (after a
   * restart of this server), then listens from the last event before that, so nothing that
   * happens meanwhile is missed.
   */
  async start(): Promise<void> {
    // A server that cannot reach its queue says so and stops, instead of waiting without a word.
    let timer: NodeJS.Timeout | undefined;
    const [last] = await Promise.race([
      this.queue.waitUntilReady().then(() => this.redis.xrevrange(this.queue.keys.events!, '+', '-', 'COUNT', 1)),
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`the queue's Redis (${this.label}) cannot be reached; start it, or check --queue (the address, the password, the database)`)), CONNECT_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    await this.reconcile();
    const events = new QueueEvents(QUEUE_NAME, { connection: redisConnection(this.opts.url), prefix: PREFIX, lastEventId: last?.[0] ?? '0' });
    this.events = events;
    events.on('error', (err) => this.opts.log(`queue: events (${this.label}): ${err.message}`));
    events.on('active', ({ jobId }) => this.onActive(jobId));
    events.on('progress', ({ jobId, data }) => this.onProgress(jobId, data));
    events.on('stalled', ({ jobId }) => this.onStalled(jobId));
    events.on('completed', ({ jobId }) => this.onCompleted(jobId));
    events.on('failed', ({ jobId, failedReason }) => this.onFailed(jobId, failedReason));
    await events.waitUntilReady();
    this.subscriber.on('message', (channel, message) => {
      if (channel !== PREVIEW_CHANNEL) return;
      let raw: unknown;
      try {
        raw = JSON.parse(message);
      } catch {
        return;
      }
      const preview = previewMessageSchema.safeParse(raw);
      if (preview.success && this.host.store.get(preview.data.jobId)?.status === 'running') this.host.preview(preview.data.jobId, preview.data.url);
    });
    await this.subscriber.subscribe(PREVIEW_CHANNEL);
  }

  private async reconcile(): Promise<void> {
    const { store } = this.host;
    const unfinished = store.list().filter((j) => j.status === 'queued' || j.status === 'running');
    const waitingInRedis = await this.queue.getRanges(['waiting'], 0, -1, true);
    for (const job of unfinished) {
      const state = await this.queue.getJobState(job.id);
      if (state === 'waiting' || state === 'prioritized' || state === 'delayed') {
        if (job.status === 'running') {
          // Its box stopped answering while this server was down; it waits for another.
          job.status = 'queued';
          store.log(job.id, 'back in the queue: its box stopped answering while the server was down');
          store.save(job);
        }
      } else if (state === 'active') {
        if (job.status === 'queued') this.markRunning(job);
        this.runningIds.add(job.id);
      } else if (state === 'completed') {
        this.host.finish(job, 'failed', 'a worker box finished this job while the front server was stopped before it had received the videos; run it again');
      } else if (state === 'failed') {
        const failed = await this.queue.getJob(job.id);
        this.end(job, failed?.failedReason ?? 'failed in the queue');
      } else if (job.status === 'queued') {
        // The job never reached Redis, or Redis lost it (restarted without its data): send it again.
        store.log(job.id, 'not in the queue in Redis: queued again');
        await this.queue.add(QUEUE_NAME, this.data(job), { jobId: job.id });
        waitingInRedis.push(job.id);
      } else {
        this.host.finish(
          job,
          'interrupted',
          `the queue in Redis (${this.label}) no longer holds this job (did Redis restart without keeping its data?); its input and settings are kept: run it again`,
        );
      }
    }
    this.waitingIds.push(...waitingInRedis.filter((id) => store.get(id)?.status === 'queued'));
    this.host.announceQueued(this.waitingIds);
    if (unfinished.length) this.opts.log(`queue: ${this.waitingIds.length} job(s) waiting and ${this.runningIds.size} running in ${this.label}`);
  }

  private data(job: JobRecord): BoxJob {
    return { jobId: job.id, model: job.settings.model ?? this.opts.defaultModel, settings: job.settings };
  }

  add(job: JobRecord): void {
    this.waitingIds.push(job.id);
    this.host.announceQueued(this.waitingIds, this.waitingIds.length - 1);
    this.queue.add(QUEUE_NAME, this.data(job), { jobId: job.id }).catch((err: Error) => {
      if (job.status !== 'queued') return;
      this.forgetWaiting(job.id);
      this.host.finish(job, 'failed', `the queue in Redis (${this.label}) could not take the job: ${err.message}`);
    });
  }

  cancel(job: JobRecord): boolean {
    if (this.forgetWaiting(job.id)) {
      this.host.finish(job, 'cancelled');
      // A box that took it meanwhile finds it cancelled when it claims it.
      this.queue.remove(job.id).then(
        (removed) => removed || this.publishCancel(job.id),
        () => this.publishCancel(job.id),
      );
      return true;
    }
    if (job.status !== 'running') return false;
    this.cancelling.add(job.id);
    this.publishCancel(job.id);
    this.host.store.log(job.id, 'cancel sent to the worker boxes');
    return true;
  }

  private publishCancel(id: string): void {
    this.redis.publish(CANCEL_CHANNEL, id).catch((err: Error) => this.opts.log(`queue: could not send the cancel of job ${id}: ${err.message}`));
  }

  /** Drops a job from the waiting list and announces the new places; false when it was not there. */
  private forgetWaiting(id: string): boolean {
    const i = this.waitingIds.indexOf(id);
    if (i < 0) return false;
    this.waitingIds.splice(i, 1);
    this.host.announceQueued(this.waitingIds, i);
    return true;
  }

  private markRunning(job: JobRecord): void {
    job.status = 'running';
    job.startedAt ??= new Date().toISOString();
    this.host.eta?.start(job);
    this.runningIds.add(job.id);
    this.host.setProgress(job, { stage: 'loading', message: 'a worker box took it' });
  }

  private onActive(id: string): void {
    const job = this.host.store.get(id);
    if (!job) return;
    if (job.status === 'queued') {
      this.forgetWaiting(id);
      this.markRunning(job);
    }
    if (this.cancelling.has(id)) this.publishCancel(id);
  }

  private onProgress(id: string, data: unknown): void {
    const job = this.host.store.get(id);
    const progress = boxProgressSchema.safeParse(data);
    if (job?.status !== 'running' || !progress.success) return;
    try {
      this.host.setProgress(job, progress.data, progress.data.stage !== 'sampling' && progress.data.stage !== 'loading');
    } catch (err) {
      this.opts.log(`job ${id}: could not record its progress: ${this.host.failureMessage(err)}`);
    }
  }

  private onStalled(id: string): void {
    const job = this.host.store.get(id);
    if (job?.status !== 'running') return;
    const box = job.ranOn?.box ?? 'the worker box';
    this.host.store.log(id, `${box} stopped answering (BullMQ found the job stalled)`);
    this.host.setProgress(job, { stage: 'loading', message: `${box} stopped answering; the job goes to another box` });
  }

  private onCompleted(id: string): void {
    const job = this.host.store.get(id);
    this.runningIds.delete(id);
    // A box completes a job only after the server took its videos; anything else is a broken box.
    if (job?.status === 'running') this.host.finish(job, 'failed', `${job.ranOn?.box ?? 'the worker box'} ended the job without delivering its videos; run it again`);
  }

  private onFailed(id: string, reason: string): void {
    const job = this.host.store.get(id);
    this.runningIds.delete(id);
    if (!job || (job.status !== 'queued' && job.status !== 'running')) return;
    this.forgetWaiting(id);
    this.end(job, reason);
  }

  private end(job: JobRecord, reason: string): void {
    const cancelled = this.cancelling.delete(job.id) || reason === 'cancelled';
    this.runningIds.delete(job.id);
    if (cancelled) this.host.finish(job, 'cancelled');
    else this.host.finish(job, 'failed', failedReasonInWords(reason));
  }

  /** Whether `lock` is BullMQ's lock on the job now: the box that sends it runs this attempt. */
  async holds(id: string, lock: string): Promise<boolean> {
    return !!lock && (await this.redis.get(`${this.queue.toKey(id)}:lock`)) === lock;
  }

  /**
   * A box starts a job: it must hold the job's lock; the job must not have ended (a cancel while
   * it was being taken). Records which box and worker run it.
   */
  async claim(id: string, ranOn: RanOn, lock: string): Promise<JobRecord> {
    // The lock first: without it, nothing about the job is said (every page user has the token).
    if (!(await this.holds(id, lock))) throw new ClaimError(409, `job ${id} is not held by ${ranOn.box} (another box has it, or its lock expired)`);
    const job = this.jobForBox(id);
    if (job.status === 'queued') {
      this.forgetWaiting(id);
      this.markRunning(job);
    }
    job.ranOn = ranOn;
    // A job handed on by a box that stopped starts its clock again on the next.
    this.host.eta?.start(job);
    this.host.store.log(id, `started on ${ranOn.box} (${ranOn.worker})`);
    this.host.setProgress(job, { stage: 'loading', message: `starting on ${ranOn.box} (${ranOn.worker})` });
    return job;
  }

  /** The job, while a box may work on it. */
  jobForBox(id: string): JobRecord {
    const job = this.host.store.get(id);
    if (!job) throw new ClaimError(404, `no job ${id} on this server`);
    if (job.status !== 'queued' && job.status !== 'running') throw new ClaimError(409, job.status === 'cancelled' ? 'cancelled' : `job ${id} has already ended (${job.status})`);
    if (this.cancelling.has(id)) throw new ClaimError(409, 'cancelled');
    return job;
  }

  /** The boxes that reported, with those that stopped reporting marked gone; reports a day old are dropped. */
  async boxes(): Promise<BoxStatus[]> {
    const all = await this.redis.hgetall(BOXES_KEY);
    const names = Object.keys(all).sort();
    if (!names.length) return [];
    const alive = await this.redis.mget(names.map(aliveKey));
    const boxes: BoxStatus[] = [];
    names.forEach((name, i) => {
      let raw: unknown;
      try {
        raw = JSON.parse(all[name]!);
      } catch {
        return;
      }
      const report = boxReportSchema.safeParse(raw);
      if (!report.success) return;
      if (!alive[i] && Date.now() - report.data.at > FORGET_AFTER_MS) void this.redis.hdel(BOXES_KEY, name).catch(() => {});
      else boxes.push({ ...report.data, gone: !alive[i] });
    });
    return boxes;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events?.close(), this.queue.close()]);
    this.subscriber.disconnect();
    this.redis.disconnect();
  }
}
