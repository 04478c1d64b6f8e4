// The denoising loop against the loop as it was written before its buffers were reused and its
// noise drawn ahead (kept here, value by value, as the reference): every latent, preview and UNet
// input bit for bit, for both samplers, with and without guidance, the guidance batch together
// and split, with the seed's noise and with given noise, with the host work on step threads or not.
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { ANIMATELCM_SVD_XT_SCHEDULER, SVD_XT_SCHEDULER } from '../models/reference-configs.js';
import { DenoiseBuffers, denoise } from '../models/pipeline/denoise-loop.js';
import { linspace } from '../models/pipeline/pipeline.js';
import { NormalGenerator } from '../models/pipeline/random.js';
import { drawSeededBlocks, GivenStepNoise, NoiseThread, SeededStepNoise, type StepNoise } from '../models/pipeline/step-noise.js';
import { StepThreads } from '../models/pipeline/step-threads.js';
import { createScheduler } from '../models/schedulers/scheduler.js';
import type { SchedulerConfig } from '../models/configs.js';

const f = Math.fround;
const dims = { F: 3, C: 4, h: 4, w: 6 };
const frameSize = dims.C * dims.h * dims.w;
const videoSize = dims.F * frameSize;
const imageLatent = Float32Array.from({ length: frameSize }, (_, i) => Math.cos(i * 0.7));

/** A UNet stand-in whose output depends on every part of its input, the batch entry and the step. */
function fakeUnet(inputs: Float32Array[]) {
  return async (sample: Float32Array, from: number, n: number, stepIndex: number) => {
    inputs.push(Float32Array.from(sample));
    const out = new Float32Array(n * videoSize);
    for (let b = 0; b < n; b++)
      for (let fr = 0; fr < dims.F; fr++)
        for (let k = 0; k < frameSize; k++) {
          const at = (b * dims.F + fr) * 2 * frameSize + k;
          out[(b * dims.F + fr) * frameSize + k] = Math.sin(sample[at]! * 0.9 + sample[at + frameSize]! * 0.3 + stepIndex * 0.01 + (from + b) * 0.5);
        }
    return out;
  };
}

/** The loop as pipeline.ts had it: fresh arrays each step, noise drawn when the sampler asks. */
async function referenceLoop(config: SchedulerConfig, steps: number, guidance: Float32Array | undefined, initialNoise: Float32Array, noise: (n: number) => Float32Array) {
  const scheduler = createScheduler(config);
  scheduler.setTimesteps(steps);
  const { F } = dims;
  const sigma0 = f(scheduler.initNoiseSigma);
  let latents: Float32Array = Float32Array.from(initialNoise, (v) => f(v * sigma0));
  const B = guidance ? 2 : 1;
  const sampleIn = new Float32Array(B * F * 2 * frameSize);
  for (let fr = 0; fr < F; fr++) sampleIn.set(imageLatent, ((B - 1) * F + fr) * 2 * frameSize + frameSize);
  const inputs: Float32Array[] = [];
  const unet = fakeUnet(inputs);
  const previews: Float32Array[] = [];
  const scaled = new Float32Array(latents.length);
  for (let i = 0; i < steps; i++) {
    scheduler.scaleModelInput(latents, i, scaled);
    for (let b = 0; b < B; b++) for (let fr = 0; fr < F; fr++) sampleIn.set(scaled.subarray(fr * frameSize, (fr + 1) * frameSize), (b * F + fr) * 2 * frameSize);
    const out = await unet(sampleIn, 0, B, i);
    let v = out;
    if (guidance) {
      v = new Float32Array(F * frameSize);
      for (let fr = 0; fr < F; fr++) {
        const g = guidance[fr]!;
        for (let k = 0; k < frameSize; k++) {
          const idx = fr * frameSize + k;
          const u = out[idx]!;
          v[idx] = f(u + f(g * f(out[F * frameSize + idx]! - u)));
        }
      }
    }
    const denoised = new Float32Array(latents.length);
    latents = scheduler.step(v, i, latents, { predOriginal: denoised, noise });
    previews.push(denoised);
  }
  return { latents, previews, inputs };
}

async function loop(
  config: SchedulerConfig,
  steps: number,
  guidance: Float32Array | undefined,
  split: boolean,
  initialNoise: Float32Array,
  stepNoise: StepNoise,
  buffers?: DenoiseBuffers,
  pool?: StepThreads,
) {
  const scheduler = createScheduler(config);
  scheduler.setTimesteps(steps);
  const inputs: Float32Array[] = [];
  const previews: Float32Array[] = [];
  const unet = fakeUnet(inputs);
  const latents = await denoise({
    scheduler,
    dims,
    imageLatent,
    initialNoise,
    guidance,
    split,
    stepNoise,
    buffers,
    unet,
    threads: pool && { pool, scheduler: config, timesteps: steps },
    previews: true,
    onStep: (_, d) => previews.push(Float32Array.from(d!)),
  });
  // A split run sees the two halves one after the other: joined as one batch to compare.
  const joined = split ? inputs.flatMap((x, k) => (k % 2 ? [] : [concat(x, inputs[k + 1]!)])) : inputs;
  return { latents, previews, inputs: joined };
}

const concat = (a: Float32Array, b: Float32Array) => {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const expectSameBits = (a: { latents: Float32Array; previews: Float32Array[]; inputs: Float32Array[] }, b: typeof a) => {
  expect(a.inputs.length).toBe(b.inputs.length);
  a.inputs.forEach((x, k) => expect(bits(x)).toEqual(bits(b.inputs[k]!)));
  expect(a.previews.length).toBe(b.previews.length);
  a.previews.forEach((x, k) => expect(bits(x)).toEqual(bits(b.previews[k]!)));
  expect(bits(a.latents)).toEqual(bits(b.latents));
};

const samplers = [
  ['Euler', SVD_XT_SCHEDULER, 5],
  ['AnimateLCM', ANIMATELCM_SVD_XT_SCHEDULER, 4],
] as const;
const layouts = [
  ['guided, joint batch', true, false],
  ['guided, split batch', true, true],
  ['unguided', false, false],
] as const;

const thread = new NoiseThread();
// Three workers for a video of 3 × 96 values: the shares do not follow the frames.
const stepThreads = new StepThreads(3);
// Shared by the tests, as a pipeline shares them between jobs: each run finds the last one's values in them.
const buffers = new DenoiseBuffers();
afterAll(() => {
  thread.close();
  stepThreads.close();
});

describe('denoising loop', () => {
  for (const [name, config, steps] of samplers)
    for (const [layout, guided, split] of layouts) {
      it(`${name}, ${layout}: the same bits as the reference loop, from the seed, drawn on a worker thread or not`, async () => {
        const guidance = guided ? linspace(1, 3, dims.F) : undefined;
        const refRng = new NormalGenerator(5);
        const ref = await referenceLoop(config, steps, guidance, refRng.normals(videoSize), (n) => refRng.normals(n));
        for (const [onThread, pool] of [
          [true, undefined],
          [false, undefined],
          [true, stepThreads],
        ] as const) {
          const rng = new NormalGenerator(5);
          const before = thread.draws;
          const got = await loop(config, steps, guidance, split, rng.normals(videoSize), new SeededStepNoise(rng, onThread ? thread : undefined), buffers, pool);
          expect(stepThreads.usable).toBe(true);
          // The AnimateLCM sampler's noise (after each step but the last) was drawn on the thread where one was given.
          expect(thread.draws - before).toBe(onThread && name === 'AnimateLCM' ? steps - 1 : 0);
          expectSameBits(got, ref);
          // The generator ends where the reference's does: no draw more, none fewer.
          expect(rng.state).toEqual(refRng.state);
        }
      });
    }

  it('the same bits with kept arrays full of what another job left (NaN here)', async () => {
    const dirty = new DenoiseBuffers();
    await dirty.use(async (array) => {
      for (const [name, n] of [
        ['sample', 2 * videoSize * 2],
        ['guided', videoSize],
        ['denoised', videoSize],
      ] as const)
        array(name, n).fill(Number.NaN);
    });
    const guidance = linspace(1, 3, dims.F);
    const refRng = new NormalGenerator(6);
    const ref = await referenceLoop(SVD_XT_SCHEDULER, 3, guidance, refRng.normals(videoSize), (n) => refRng.normals(n));
    const rng = new NormalGenerator(6);
    expectSameBits(await loop(SVD_XT_SCHEDULER, 3, guidance, false, rng.normals(videoSize), new SeededStepNoise(rng), dirty), ref);
  });

  it('a draw left running by a cancelled job does not answer the next job', async () => {
    // The same seed, so a mixed-up answer would be taken without complaint.
    const left = new SeededStepNoise(new NormalGenerator(8), thread);
    void left.draw(1000);
    const rng = new NormalGenerator(8);
    rng.normals(5);
    const refRng = NormalGenerator.fromState(rng.state);
    expect(await new SeededStepNoise(rng, thread).draw(1000)).toEqual(refRng.normals(1000));
    expect(rng.state).toEqual(refRng.state);
  });

  it('draws on the main thread, the same values, where the noise thread fails', async () => {
    // A thread that ends before it answers, as a crashed one would.
    const failing = new NoiseThread(() => new Worker('process.exit(3)', { eval: true }));
    const refRng = new NormalGenerator(9);
    const rng = new NormalGenerator(9);
    const noise = new SeededStepNoise(rng, failing);
    for (const n of [7, 7, 4]) expect(await noise.draw(n)).toEqual(refRng.normals(n));
    expect(failing.usable).toBe(false);
    expect(rng.state).toEqual(refRng.state);
  });

  it('two loops at once on one set of step threads: one takes them, the other works alone, both the same bits', async () => {
    const guidance = linspace(1, 3, dims.F);
    const refRng = new NormalGenerator(12);
    const ref = await referenceLoop(SVD_XT_SCHEDULER, 4, guidance, refRng.normals(videoSize), (n) => refRng.normals(n));
    const run = () => {
      const rng = new NormalGenerator(12);
      return loop(SVD_XT_SCHEDULER, 4, guidance, false, rng.normals(videoSize), new SeededStepNoise(rng), undefined, stepThreads);
    };
    const [a, b] = await Promise.all([run(), run()]);
    expectSameBits(a, ref);
    expectSameBits(b, ref);
    expect(stepThreads.usable).toBe(true);
  });

  it('does the host work on the main thread, the same bits, where a step thread fails or never loads', async () => {
    const guidance = linspace(1, 3, dims.F);
    const refRng = new NormalGenerator(11);
    const ref = await referenceLoop(ANIMATELCM_SVD_XT_SCHEDULER, 4, guidance, refRng.normals(videoSize), (n) => refRng.normals(n));
    for (const spawn of [() => new Worker('process.exit(3)', { eval: true }), () => new Worker("require('node:worker_threads').parentPort.postMessage('ready')", { eval: true })]) {
      // The second loads but never answers a phase: the loop gives up on it at the timeout (shortened here).
      const pool = new StepThreads(2, spawn, 300);
      const rng = new NormalGenerator(11);
      expectSameBits(await loop(ANIMATELCM_SVD_XT_SCHEDULER, 4, guidance, false, rng.normals(videoSize), new SeededStepNoise(rng), undefined, pool), ref);
      expect(pool.usable).toBe(false);
      pool.close();
    }
  });

  it("draws a job's first blocks (conditioning, initial latents) in one draw, on the thread or here, as one after the other from the seed", async () => {
    const failing = new NoiseThread(() => new Worker('process.exit(3)', { eval: true }));
    for (const on of [thread, failing, undefined]) {
      const refRng = new NormalGenerator(11);
      const expected = [5, 0, 9].map((n) => refRng.normals(n));
      const rng = new NormalGenerator(11);
      const blocks = await drawSeededBlocks(rng, [5, 0, 9], on);
      expect(blocks.map((b) => Array.from(b))).toEqual(expected.map((b) => Array.from(b)));
      // The step noise goes on from where the blocks end.
      expect(rng.state).toEqual(refRng.state);
      expect(await new SeededStepNoise(rng, on).draw(6)).toEqual(refRng.normals(6));
    }
    expect(failing.usable).toBe(false);
    expect((await drawSeededBlocks(new NormalGenerator(1), [0, 0], thread)).map((b) => b.length)).toEqual([0, 0]);
  });

  it('AnimateLCM with given noise: the same bits as the reference loop; too few tensors is an error', async () => {
    const given = [1, 2, 3].map((k) => Float32Array.from({ length: videoSize }, (_, i) => Math.sin(i * k)));
    const initial = Float32Array.from({ length: videoSize }, (_, i) => Math.cos(i * 0.3));
    let k = 0;
    const ref = await referenceLoop(ANIMATELCM_SVD_XT_SCHEDULER, 4, linspace(1, 1.2, dims.F), initial, () => given[k++]!);
    expectSameBits(await loop(ANIMATELCM_SVD_XT_SCHEDULER, 4, linspace(1, 1.2, dims.F), false, initial, new GivenStepNoise(given)), ref);
    await expect(loop(ANIMATELCM_SVD_XT_SCHEDULER, 4, undefined, false, initial, new GivenStepNoise(given.slice(0, 2)))).rejects.toThrow(
      /asked for step noise 3 times but 2 step noise tensors were given/,
    );
  });
});
