// Where a job's noise comes from: the caller's tensors (reference replay) or the job's seeded
// generator, drawn in one order: the conditioning image's noise, the initial latents', then a
// sampler's fresh noise between steps in the order it asks.
import type { Worker } from 'node:worker_threads';
import { startComputeThread } from './compute-thread.js';
import type { NoiseDraw } from './noise-worker.js';
import type { NormalGenerator } from './random.js';

export interface StepNoise {
  /**
   * `n` standard normals for the next step that adds noise. The loop asks before that step's
   * UNet run and awaits the values after it, so a source may draw them meanwhile. The array is
   * the source's: valid until the next draw.
   */
  draw(n: number): Promise<Float32Array>;
}

/** The caller's tensors, one per step that asks, checked for their count and size. */
export class GivenStepNoise implements StepNoise {
  private drawn = 0;

  constructor(private readonly tensors: readonly Float32Array[]) {}

  async draw(n: number): Promise<Float32Array> {
    const k = this.drawn++;
    if (k >= this.tensors.length) throw new Error(`the sampler asked for step noise ${k + 1} times but ${this.tensors.length} step noise tensors were given`);
    const z = this.tensors[k]!;
    if (z.length !== n) throw new Error(`step ${k + 1} noise has ${z.length} values, expected ${n}`);
    return z;
  }
}

/**
 * The seed's generator, into one buffer reused from step to step, drawn on a NoiseThread where
 * one is given: the same values in the same order, since each draw starts from the generator's
 * state and takes the state after it back. Where the thread fails, the draw is made here from
 * the same state.
 */
export class SeededStepNoise implements StepNoise {
  private buffer: Float32Array<ArrayBuffer> = new Float32Array(0);

  constructor(
    private readonly rng: NormalGenerator,
    private readonly thread?: NoiseThread,
  ) {}

  async draw(n: number): Promise<Float32Array> {
    // A buffer lost with a failed thread is detached (length 0) and made again.
    if (this.buffer.length !== n) this.buffer = new Float32Array(n);
    this.buffer = await fillFrom(this.rng, this.buffer, this.thread);
    return this.buffer;
  }
}

/**
 * The job's first draws from the seed's generator, blocks of `sizes` values one after the other
 * (`sizes.map((n) => rng.normals(n))`), made in one draw on the noise thread where one is given:
 * the pipeline draws the conditioning image's and the initial latents' noise there while the
 * main thread prepares the CLIP input, which needs neither. The generator is left after the last
 * block, where the step noise goes on. Never rejects: a failed thread's draw is made here.
 */
export function drawSeededBlocks(rng: NormalGenerator, sizes: readonly number[], thread?: NoiseThread): Promise<Float32Array[]> {
  const total = sizes.reduce((sum, n) => sum + n, 0);
  // Made here, so that an array too large fails the caller at once.
  const all = new Float32Array(total);
  const split = (values: Float32Array) => {
    let at = 0;
    return sizes.map((n) => values.subarray(at, (at += n)));
  };
  if (total === 0) return Promise.resolve(split(all));
  return fillFrom(rng, all, thread).then(split);
}

/**
 * Fills `out` from `rng` on the thread where it is usable, else (or where it fails) here from the
 * same state, and leaves `rng` after the draw. Resolves to the filled array: `out`, or its buffer
 * back from the thread.
 */
async function fillFrom(rng: NormalGenerator, out: Float32Array<ArrayBuffer>, thread: NoiseThread | undefined): Promise<Float32Array<ArrayBuffer>> {
  const n = out.length;
  if (thread?.usable) {
    try {
      const reply = await thread.fill({ state: rng.state, out });
      rng.state = reply.state;
      return reply.out;
    } catch {
      // The array went to the failed thread (detached).
      if (out.length !== n) out = new Float32Array(n);
    }
  }
  rng.fill(out);
  return out;
}

/**
 * A worker thread (noise-worker.ts) that draws noise while the main thread is held by
 * onnxruntime-node's session.run (its binding runs the session synchronously, so nothing on the
 * main thread overlaps a UNet run). Started at its first draw and kept for the next jobs;
 * draws are made in the order they are sent. After a failure it is not used again.
 */
export class NoiseThread {
  private worker: Worker | null | undefined;
  /** Draws made on the thread (tests and benchmarks check that it was used). */
  draws = 0;
  private requests = 0;
  /** Draws sent and not yet answered. */
  private pending = 0;

  /** `spawn` starts the thread: noise-worker.ts by default (a test gives one that fails). */
  constructor(private readonly spawn: () => Worker = () => startComputeThread('noise-worker')) {}

  get usable(): boolean {
    return this.worker !== null;
  }

  /** Fills `out` from `state` on the thread (the array is transferred there and back); rejects where the thread fails. */
  fill({ state, out }: Omit<NoiseDraw, 'id'>): Promise<NoiseDraw> {
    const id = ++this.requests;
    return new Promise((resolve, reject) => {
      const worker = this.start();
      if (!worker) return reject(new Error('the noise thread could not start'));
      const done = (err?: Error) => {
        worker.off('message', onMessage).off('error', done).off('exit', onExit);
        if (--this.pending === 0) worker.unref();
        if (!err) return;
        // Not again (unless this was a thread closed since and started anew).
        if (this.worker === worker) {
          this.close();
          this.worker = null;
        }
        reject(err);
      };
      const onMessage = (reply: NoiseDraw) => {
        // A draw a cancelled job left running answers first: not this one's.
        if (reply.id !== id) return;
        done();
        this.draws++;
        resolve(reply);
      };
      const onExit = (code: number) => done(new Error(`the noise thread exited with code ${code}`));
      // Held while a draw is out, so that the process waits for it; idle, it keeps nothing alive.
      if (this.pending++ === 0) worker.ref();
      worker.on('message', onMessage).on('error', done).on('exit', onExit);
      worker.postMessage({ id, state, out } satisfies NoiseDraw, [out.buffer]);
    });
  }

  close(): void {
    void this.worker?.terminate();
    if (this.worker) this.worker = undefined;
    this.pending = 0;
  }

  private start(): Worker | null {
    if (this.worker !== undefined) return this.worker;
    try {
      this.worker = this.spawn();
      this.worker.unref();
    } catch {
      this.worker = null;
    }
    return this.worker;
  }
}
