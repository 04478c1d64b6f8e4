// What `npm start -- --queue redis://…` adds to the server: the BullMQ queue in place of the
// in-process one, the routes the worker boxes call, the boxes in /api/health, and, when
// --gpus/--workers ask for them, this machine's own workers as one more box.
import { hostname } from 'node:os';
import type { Router } from 'express';
import type { BoxReport, BoxStatus } from '../../common/boxes.js';
import type { WorkerStatus } from '../../common/worker-protocol.js';
import type { JobHost, JobQueue } from '../jobs/job-queue.js';
import type { WorkerPool } from '../workers/pool.js';
import { BoxAgent } from './box-agent.js';
import { boxRoutes } from './box-routes.js';
import { RedisQueue, type RedisQueueOptions } from './redis-queue.js';

export class QueueFront {
  private redisQueue: RedisQueue | undefined;
  private localBox: BoxAgent | undefined;

  constructor(private readonly opts: RedisQueueOptions) {}

  /** For JobService's `queue` option. */
  readonly factory = (host: JobHost): JobQueue => {
    this.redisQueue = new RedisQueue(host, this.opts);
    return this.redisQueue;
  };

  private get queue(): RedisQueue {
    if (!this.redisQueue) throw new Error('the job service has not made its queue yet');
    return this.redisQueue;
  }

  get label(): string {
    return this.queue.label;
  }

  start(): Promise<void> {
    return this.queue.start();
  }

  routes(host: JobHost): Router {
    return boxRoutes(host, this.queue);
  }

  /** The boxes, or none when Redis cannot be asked now (health must answer all the same). */
  async boxes(): Promise<BoxStatus[]> {
    return this.queue.boxes().catch((err: Error) => {
      this.opts.log(`queue: could not read the boxes' reports: ${err.message}`);
      return [];
    });
  }

  /** This server's own workers, taking jobs from the queue like any other box. */
  async startLocalBox(o: { pool: WorkerPool; models: string[]; cards: BoxReport['cards']; server: string; token: string; workDir: string }): Promise<void> {
    this.localBox = new BoxAgent({
      ...o,
      redisUrl: this.opts.url,
      name: `${hostname()
        .replace(/[^\w.-]/g, '-')
        .slice(0, 58)}-front`,
      log: this.opts.log,
    });
    await this.localBox.start();
  }

  async close(): Promise<void> {
    // Jobs running here are left to the stalled-job check, which hands them to another box.
    await this.localBox?.close(false);
  }
}

/** Every live box's workers, named by box, beside the server's own for the health summary. */
export function boxWorkers(boxes: BoxStatus[]): WorkerStatus[] {
  return boxes.filter((b) => !b.gone).flatMap((b) => b.workers.map((w) => ({ ...w, name: `${b.name}: ${w.name}` })));
}
