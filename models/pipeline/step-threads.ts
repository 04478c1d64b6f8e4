// Worker threads that share the host work between UNet runs (the guidance mix, the scheduler's
// step, the next step's UNet input: step-work.ts), each over its own range of the video's latent
// values in shared memory. On the main thread that work is single-threaded elementwise loops over
// millions of values a step; onnxruntime-node's session.run holds the main thread meanwhile, so
// this is the part of a step that more cores shorten. The main thread starts each phase through
// shared control words (Atomics: no message round trip per step) and blocks until every worker has
// counted itself done; the workers start each job from one message and wait for the next job once
// it ends. A worker that fails or does not answer makes the phase report failure: the loop then
// does the phase itself (its inputs are untouched: a step writes other arrays than it reads) and
// stops using the threads.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startComputeThread } from './compute-thread.js';
import type { SchedulerConfig } from '../configs.js';
import type { StepShape } from './step-work.js';

/** Indices of the shared control words. */
export const CONTROL = { generation: 0, phase: 1, step: 2, pending: 3, failed: 4 } as const;
/** Phase bits: what a phase does for step `step`. */
export const PHASE = { prepare: 1, finish: 2, noise: 4, previews: 8, end: 16 } as const;

/** A job as a worker receives it. */
export interface StepJobMessage {
  control: SharedArrayBuffer;
  /** The control generation when the job was sent: a phase started before the worker read this message still counts. */
  generation: number;
  scheduler: SchedulerConfig;
  timesteps: number | { sigmas: readonly number[] };
  shape: Omit<StepShape, 'guidance'> & { guidance?: Float32Array };
  /** The two latent arrays a step alternates between (step i reads [i % 2], writes [(i + 1) % 2]). */
  latents: [SharedArrayBuffer, SharedArrayBuffer];
  /** The scaled latents (the UNet's input before it is placed beside the image latent). */
  scaled: SharedArrayBuffer;
  unetOut: SharedArrayBuffer;
  guided?: SharedArrayBuffer;
  denoised?: SharedArrayBuffer;
  noise?: SharedArrayBuffer;
  /** This worker's latent values [from, to). */
  range: [number, number];
}

export type StepThreadsJob = Omit<StepJobMessage, 'control' | 'generation' | 'range'> & { values: number };

/** Long enough for any share of a step on a loaded machine; a worker this late is taken as lost. */
const PHASE_TIMEOUT_MS = 30_000;

/** The worker count for this machine: none where the main thread would be as fast alone (two cores or fewer). */
export function stepThreadCount(cores = availableParallelism()): number {
  return cores <= 2 ? 0 : Math.min(8, cores - 1);
}

export class StepThreads {
  private workers: Worker[] | null | undefined;
  /** Settles once every worker has loaded its code (or one could not). */
  private ready: Promise<boolean> | undefined;
  private readonly control = new SharedArrayBuffer(4 * 8);
  private readonly ctrl = new Int32Array(this.control);
  private inJob = false;

  /** `spawn` starts one worker: step-worker.ts by default (a test gives one that fails); `timeoutMs`: how long a phase or the start may take. */
  constructor(
    readonly count: number,
    private readonly spawn: () => Worker = () => startComputeThread('step-worker'),
    private readonly timeoutMs = PHASE_TIMEOUT_MS,
  ) {}

  /** Whether the threads can take a job (not after a failure, nor with no workers). */
  get usable(): boolean {
    return this.count > 0 && this.workers !== null;
  }

  /** Hands the workers a job, each its share of `values`; false where the threads are taken by another job, or cannot start (then they are not used again). */
  async begin(job: StepThreadsJob): Promise<boolean> {
    // One job at a time: a loop that finds the threads taken (another job of the same pipeline) works alone.
    if (!this.usable || this.inJob) return false;
    this.inJob = true;
    if (!(await this.start())) return this.fail();
    const workers = this.workers;
    if (!workers) return this.fail();
    const { values, ...rest } = job;
    const generation = Atomics.load(this.ctrl, CONTROL.generation);
    Atomics.store(this.ctrl, CONTROL.failed, 0);
    workers.forEach((w, k) => {
      const range: [number, number] = [Math.floor((values * k) / workers.length), Math.floor((values * (k + 1)) / workers.length)];
      w.postMessage({ ...rest, control: this.control, generation, range } satisfies StepJobMessage);
    });
    return true;
  }

  /** Runs one phase (PHASE bits) of step `step` on every worker and waits for all; false where one failed or did not answer (the threads are then given up). */
  run(phase: number, step: number): boolean {
    if (!this.inJob || !this.workers) return false;
    const { ctrl } = this;
    Atomics.store(ctrl, CONTROL.pending, this.workers.length);
    Atomics.store(ctrl, CONTROL.phase, phase);
    Atomics.store(ctrl, CONTROL.step, step);
    Atomics.add(ctrl, CONTROL.generation, 1);
    Atomics.notify(ctrl, CONTROL.generation);
    const deadline = performance.now() + this.timeoutMs;
    for (let left = Atomics.load(ctrl, CONTROL.pending); left !== 0; left = Atomics.load(ctrl, CONTROL.pending)) {
      const wait = deadline - performance.now();
      if (wait <= 0) return this.fail();
      Atomics.wait(ctrl, CONTROL.pending, left, wait);
    }
    return Atomics.load(ctrl, CONTROL.failed) === 0 || this.fail();
  }

  /** Ends the job: the workers go back to waiting for the next one. */
  end(): void {
    if (!this.inJob) return;
    this.inJob = false;
    Atomics.store(this.ctrl, CONTROL.phase, PHASE.end);
    Atomics.add(this.ctrl, CONTROL.generation, 1);
    Atomics.notify(this.ctrl, CONTROL.generation);
  }

  close(): void {
    this.end();
    for (const w of this.workers ?? []) void w.terminate();
    if (this.workers) this.workers = undefined;
  }

  private fail(): false {
    this.inJob = false;
    for (const w of this.workers ?? []) void w.terminate();
    this.workers = null;
    return false;
  }

  private start(): Promise<boolean> {
    if (this.workers === undefined) this.ready = undefined;
    this.ready ??= new Promise<boolean>((resolve) => {
      let workers: Worker[];
      try {
        workers = Array.from({ length: this.count }, () => this.spawn());
      } catch {
        return resolve(false);
      }
      this.workers = workers;
      let loaded = 0;
      const timer = setTimeout(() => resolve(false), this.timeoutMs);
      const settle = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      for (const w of workers) {
        // Idle workers do not keep the process alive; a later error shows as a phase that fails or times out.
        w.unref();
        w.on('error', () => settle(false))
          .on('exit', () => settle(false))
          .once('message', (m: unknown) => {
            if (m !== 'ready') return settle(false);
            if (++loaded === workers.length) settle(true);
          });
      }
    });
    return this.ready;
  }
}
