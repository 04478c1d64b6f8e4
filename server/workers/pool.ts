// The inference workers: one child process per GPU (or N on the CPU), each running worker-main.ts.
// A worker that dies is started again; a job whose worker died fails with the reason; a cancel the
// worker does not answer at once (a step is in flight) kills it, and its model reloads in the
// background while the next job waits.
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fromWorkerSchema, type FromWorker, type ToWorkerInput, type WorkerProgress, type WorkerRuntime, type WorkerStatus } from '../../common/worker-protocol.js';
import { cudaLibraryEnv } from '../../models/runtime/cuda-libraries.js';
import type { GenerationSettings } from '../../common/settings.js';

export interface WorkerSlot {
  /** e.g. "gpu 0", "worker 1". */
  name: string;
  /** The CUDA card, for GPU workers. */
  deviceId?: number;
}

export interface WorkerJob {
  jobId: string;
  /** The installed model's name; undefined: the server's default. */
  model?: string;
  imagePath: string;
  /** Where the worker writes the 8-bit RGB frames. */
  framesPath: string;
  settings: GenerationSettings;
}

export interface WorkerJobEvents {
  progress(p: WorkerProgress): void;
  preview(url: string): void;
}

export type WorkerJobResult = Omit<Extract<FromWorker, { type: 'result' }>, 'type' | 'jobId'>;

export class JobCancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'JobCancelledError';
  }
}

/**
 * The environment a worker process starts with: the single place to add what the inference
 * libraries need (for example the CUDA library directories on LD_LIBRARY_PATH).
 */
export function workerEnv(_slot: WorkerSlot): NodeJS.ProcessEnv {
  return { ...process.env, ...cudaLibraryEnv() };
}

/**
 * worker-main next to this module, with this module's extension: the TypeScript source under tsx
 * (`npm run dev`, tests), the compiled .js (`npm start`), or a bundle's .mjs (the GPU machine).
 */
function workerEntry(): { path: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ext = extname(here);
  const fromSource = ext === '.ts';
  const path = join(dirname(here), `worker-main${ext}`);
  // tsx's loader by absolute URL, so the child does not depend on its working directory.
  const execArgv = fromSource ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
  return { path, execArgv };
}

/** Why a worker process ended, in words for the job's error and the log. */
function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  return signal === 'SIGKILL'
    ? 'was killed (SIGKILL: the machine may have run out of memory, or something stopped it)'
    : signal === 'SIGABRT'
      ? 'aborted (SIGABRT: onnxruntime or the GPU driver gave up)'
      : signal
        ? `was stopped by ${signal}`
        : `exited with code ${code}`;
}

interface ActiveJob {
  job: WorkerJob;
  events: WorkerJobEvents;
  resolve(r: WorkerJobResult): void;
  reject(e: Error): void;
  /** The process the job was sent to (a job waits while its worker restarts). */
  sentTo?: ChildProcess;
  stage?: WorkerProgress['stage'];
  cancelTimer?: NodeJS.Timeout;
}

export interface InferenceWorkerOptions {
  runtime: Omit<WorkerRuntime, 'deviceId'>;
  models: { name: string; path: string; interpolator?: string }[];
  log: (line: string) => void;
  /** How long a cancel may wait for the worker to stop between steps before it is killed. */
  cancelGraceMs: number;
}

/** One worker slot: the child process of the moment, restarted whenever it ends. */
export class InferenceWorker extends EventEmitter<{ free: [] }> {
  private child: ChildProcess | undefined;
  private pid: number | undefined;
  private listening = false;
  private state: WorkerStatus['state'] = 'starting';
  private model: string | undefined;
  private provider: string | undefined;
  private message: string | undefined;
  /** Why the process was restarted, until its model is ready again. */
  private restartNote: string | undefined;
  private active: ActiveJob | undefined;
  private killedOnPurpose: 'cancel' | 'close' | undefined;
  private crashesInARow = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private stderrTail: string[] = [];

  constructor(
    readonly slot: WorkerSlot,
    private readonly opts: InferenceWorkerOptions,
  ) {
    super();
  }

  get name(): string {
    return this.slot.name;
  }

  get busy(): boolean {
    return this.active !== undefined;
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  get failed(): boolean {
    return this.state === 'error';
  }

  get loadedModel(): string | undefined {
    return this.state === 'ready' ? this.model : undefined;
  }

  /** What a job that waits for this worker is told. */
  get waitingNote(): string {
    if (this.state === 'ready') return `starting on ${this.name}`;
    const what = this.state === 'error' ? `the model failed to load: ${this.message}` : (this.restartNote ?? `${this.name} is loading the model`);
    return `waiting for ${this.name}: ${what}`;
  }

  status(): WorkerStatus {
    return {
      name: this.name,
      ...(this.slot.deviceId !== undefined ? { deviceId: this.slot.deviceId } : {}),
      pid: this.pid,
      state: this.state,
      model: this.model,
      provider: this.provider,
      message: this.restartNote && this.state !== 'ready' ? `${this.restartNote}${this.message ? `: ${this.message}` : ''}` : this.message,
      job: this.active?.job.jobId ?? null,
      stage: this.active ? (this.active.stage ?? 'loading') : undefined,
    };
  }

  start(): void {
    if (this.closed || this.child) return;
    const { path, execArgv } = workerEntry();
    this.listening = false;
    this.killedOnPurpose = undefined;
    this.stderrTail = [];
    this.state = this.restartNote ? 'restarting' : 'starting';
    const child = fork(path, [], { execArgv, env: workerEnv(this.slot), stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
    this.child = child;
    this.pid = child.pid;
    const lines = (stream: NodeJS.ReadableStream | null, onLine: (line: string) => void) => {
      if (stream) createInterface({ input: stream }).on('line', (l) => l.trim() && onLine(l));
    };
    lines(child.stdout, (l) => this.opts.log(`[${this.name}] ${l}`));
    lines(child.stderr, (l) => {
      this.stderrTail = [...this.stderrTail, l].slice(-5);
      this.opts.log(`[${this.name}] ${l}`);
    });
    child.on('message', (raw) => {
      const parsed = fromWorkerSchema.safeParse(raw);
      if (parsed.success) return this.onMessage(parsed.data);
      // A worker that breaks the protocol cannot be trusted with the job: start a fresh one.
      this.opts.log(`${this.name}: malformed message from the worker (${parsed.error.issues[0]?.message}); restarting it`);
      child.kill('SIGKILL');
    });
    child.on('error', (err) => {
      this.opts.log(`${this.name}: worker process error: ${err.message}`);
      // A process that never started emits no 'exit'.
      if (child.pid === undefined) this.onExit(child, null, null, `could not be started: ${err.message}`);
    });
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
  }

  private send(msg: ToWorkerInput): void {
    if (!this.child?.connected) return;
    this.child.send(msg, (err) => err && this.opts.log(`${this.name}: could not message the worker: ${err.message}`));
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case 'started':
        this.listening = true;
        this.pid = msg.pid;
        this.send({ type: 'init', name: this.name, runtime: { ...this.opts.runtime, deviceId: this.slot.deviceId }, models: this.opts.models, load: this.model ?? this.opts.models[0]!.name });
        if (this.active && !this.active.sentTo) this.sendRun(this.active);
        break;
      case 'model-loading':
        this.state = 'loading';
        this.model = msg.name;
        this.provider = undefined;
        this.message = msg.message;
        this.active?.events.progress({ stage: 'loading', message: this.restartNote ? `${this.restartNote}: ${msg.message}` : msg.message });
        break;
      case 'model-ready':
        this.state = 'ready';
        this.model = msg.name;
        this.provider = msg.provider;
        this.message = this.restartNote = undefined;
        this.crashesInARow = 0;
        this.opts.log(`${this.name}: model ${msg.name} ready on ${msg.provider}`);
        break;
      case 'model-error':
        this.state = 'error';
        this.model = msg.name;
        this.provider = this.restartNote = undefined;
        this.message = msg.error;
        this.opts.log(`${this.name}: error: the model could not be loaded: ${msg.error}`);
        break;
      case 'progress':
        if (this.active?.job.jobId !== msg.jobId) break;
        this.active.stage = msg.progress.stage;
        this.active.events.progress(msg.progress);
        break;
      case 'preview':
        if (this.active?.job.jobId === msg.jobId) this.active.events.preview(msg.url);
        break;
      case 'result': {
        const { type: _t, jobId, ...result } = msg;
        if (this.active?.job.jobId === jobId) this.endJob((a) => a.resolve(result));
        break;
      }
      case 'job-failed':
        if (this.active?.job.jobId === msg.jobId) this.endJob((a) => a.reject(msg.cancelled ? new JobCancelledError() : new Error(msg.error)));
        break;
    }
  }

  private endJob(settle: (a: ActiveJob) => void): void {
    const a = this.active;
    if (!a) return;
    clearTimeout(a.cancelTimer);
    this.active = undefined;
    settle(a);
    this.emit('free');
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, why?: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.listening = false;
    const reason = why ?? exitReason(code, signal);
    const lastError = this.stderrTail.at(-1);
    const purpose = this.killedOnPurpose;
    this.provider = undefined;
    if (this.active?.sentTo === child) {
      const a = this.active;
      const said = lastError ? ` Its last error output: ${lastError}` : '';
      this.endJob(() => a.reject(new Error(`the worker process (${this.name}) ${reason} during this job; the server restarted it: run the job again.${said}`)));
    }
    if (this.closed) {
      this.state = 'stopped';
      return;
    }
    if (purpose === 'cancel') {
      this.start();
      return;
    }
    this.crashesInARow += 1;
    // A worker that dies before its model is ready again would otherwise restart in a tight loop.
    const delay = this.crashesInARow <= 1 ? 0 : Math.min(60_000, 1000 * 2 ** (this.crashesInARow - 2));
    this.restartNote = `restarted after the worker process ${reason}`;
    this.opts.log(`${this.name}: the worker process ${reason}; restarting it${delay ? ` in ${delay / 1000} s` : ''}`);
    this.state = 'restarting';
    this.restartTimer = setTimeout(() => this.start(), delay);
  }

  private sendRun(a: ActiveJob): void {
    a.sentTo = this.child;
    this.send({ type: 'run', ...a.job });
  }

  /** Runs one job; the worker must not be busy. Rejects with JobCancelledError after a cancel. */
  run(job: WorkerJob, events: WorkerJobEvents, signal: AbortSignal): Promise<WorkerJobResult> {
    if (this.active) throw new Error(`${this.name} already runs job ${this.active.job.jobId}`);
    if (this.closed) return Promise.reject(new Error('the server is shutting down'));
    return new Promise<WorkerJobResult>((resolve, reject) => {
      const a: ActiveJob = { job, events, resolve, reject };
      this.active = a;
      if (this.listening) this.sendRun(a);
      const cancel = () => this.cancel(a);
      if (signal.aborted) cancel();
      else signal.addEventListener('abort', cancel, { once: true });
    });
  }

  private cancel(a: ActiveJob): void {
    if (this.active !== a) return;
    if (!a.sentTo) {
      this.endJob(() => a.reject(new JobCancelledError()));
      return;
    }
    this.send({ type: 'cancel', jobId: a.job.jobId });
    // Between steps the worker answers at once; inside a step its event loop is blocked until the
    // step ends, so it is killed and started again instead of keeping the user waiting.
    a.cancelTimer = setTimeout(() => {
      if (this.active !== a || !this.child) return;
      this.opts.log(`${this.name}: job ${a.job.jobId} is mid-step; stopping the worker to cancel it`);
      this.killedOnPurpose = 'cancel';
      // The next job must wait for the new process, not go to this dying one.
      this.listening = false;
      this.state = 'restarting';
      this.restartNote = 'restarted after a job was cancelled mid-step, reloading the model';
      this.child.kill('SIGKILL');
      this.endJob(() => a.reject(new JobCancelledError()));
    }, this.opts.cancelGraceMs);
  }

  /** Asks the worker to release the GPU and exit; kills it if it does not within `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) {
      this.state = 'stopped';
      return;
    }
    const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
    this.killedOnPurpose = 'close';
    this.send({ type: 'shutdown' });
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

export interface WorkerPoolOptions extends Omit<InferenceWorkerOptions, 'cancelGraceMs'> {
  slots: WorkerSlot[];
  cancelGraceMs?: number;
}

/** The workers of this server, in slot order; a job goes to the first free one. */
export class WorkerPool extends EventEmitter<{ free: [] }> {
  readonly workers: InferenceWorker[];
  private readonly defaultModel: string | undefined;

  constructor(opts: WorkerPoolOptions) {
    super();
    this.defaultModel = opts.models[0]?.name;
    if (!opts.slots.length) throw new Error('a worker pool needs at least one worker');
    this.workers = opts.slots.map((slot) => new InferenceWorker(slot, { ...opts, cancelGraceMs: opts.cancelGraceMs ?? 500 }));
    for (const w of this.workers) {
      w.on('free', () => this.emit('free'));
    }
  }

  start(): void {
    for (const w of this.workers) w.start();
  }

  /**
   * The free worker a job should go to: a ready one (one with the job's model loaded first), else
   * one still loading. A worker whose model failed to load takes jobs only when every worker has
   * failed, so that its error reaches the user instead of jobs waiting forever. `taken`: workers
   * promised to jobs that have not reached them yet.
   */
  firstFree(model?: string, taken?: ReadonlySet<InferenceWorker>): InferenceWorker | undefined {
    const free = this.workers.filter((w) => !w.busy && !taken?.has(w));
    const wanted = model ?? this.defaultModel;
    return free.find((w) => w.loadedModel === wanted) ?? free.find((w) => w.ready) ?? free.find((w) => !w.failed) ?? (this.workers.every((w) => w.failed) ? free[0] : undefined);
  }

  status(): WorkerStatus[] {
    return this.workers.map((w) => w.status());
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
