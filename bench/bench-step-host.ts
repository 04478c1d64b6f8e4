// The host work between two UNet runs at SVD-XT's full size (25 frames, 4 × 72 × 128 latents,
// guidance batch of two): the pipeline's own denoising loop (models/pipeline/denoise-loop.ts) with
// the UNet replaced by a stand-in that hands back one precomputed output. The stand-in holds the
// main thread for --unet-ms per run (default 100, part of a GPU's UNet run), as
// onnxruntime-node's session.run does (its binding runs the session synchronously), so what
// overlaps a UNet run (the AnimateLCM sampler's noise, drawn on the pipeline's noise thread)
// shows. Previews on, as the server asks for them. Prints the host milliseconds per step (median
// over every step of --jobs jobs) and per job (the loop's whole time less the stand-in's), for
// the Euler and the AnimateLCM sampler at their models' default settings, the latter with its
// noise drawn on the noise thread (as the pipeline does) and on the main thread, each with the
// host work on the main thread and on the step threads (as many as the pipeline takes here, or
// --threads); then the decoder's unscale of the latents (unscaleLatents), once per job.
//   npm run bench:step-host -- [--jobs N] [--unet-ms MS] [--threads N]
import { parseArgs } from 'node:util';
import { DenoiseBuffers, denoise } from '../models/pipeline/denoise-loop.js';
import { linspace, unscaleLatents } from '../models/pipeline/pipeline.js';
import { NormalGenerator } from '../models/pipeline/random.js';
import { NoiseThread, SeededStepNoise } from '../models/pipeline/step-noise.js';
import { StepThreads, stepThreadCount } from '../models/pipeline/step-threads.js';
import { ANIMATELCM_SVD_XT_SCHEDULER, SVD_XT_SCHEDULER, SVD_XT_VAE } from '../models/reference-configs.js';
import { createScheduler } from '../models/schedulers/scheduler.js';
import { modelDefaults, parseSettings } from '../common/settings.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '5' }, 'unet-ms': { type: 'string', default: '100' }, threads: { type: 'string', default: String(stepThreadCount()) } } });
const jobs = Number(values.jobs);
const unetMs = Number(values['unet-ms']);
if (!(Number.isInteger(jobs) && jobs >= 1)) throw new Error(`--jobs must be a positive integer, got ${values.jobs}`);
if (!(unetMs >= 0)) throw new Error(`--unet-ms must be a number of milliseconds ≥ 0, got ${values['unet-ms']}`);
console.log(machineLine('cpu (host work only: the UNet is a stand-in)'));

const dims = { F: 25, C: 4, h: 72, w: 128 };
const latentSize = dims.F * dims.C * dims.h * dims.w;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Deterministic stand-in values in about the range of a UNet output. */
const filled = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.001 + k));
const unetOutput = filled(2 * latentSize, 1);
const imageLatent = filled(dims.C * dims.h * dims.w, 2);

// Each sampler at its model's default settings (the page's and the CLI's).
// Kept from job to job, as the pipeline keeps them.
const thread = new NoiseThread();
const buffers = new DenoiseBuffers();
const threads = Number(values.threads);
if (!(Number.isInteger(threads) && threads >= 0)) throw new Error(`--threads must be a whole number ≥ 0, got ${values.threads}`);
const pool = new StepThreads(threads);
const euler = { config: SVD_XT_SCHEDULER, settings: parseSettings({}) };
const lcm = { config: ANIMATELCM_SVD_XT_SCHEDULER, settings: parseSettings(modelDefaults({ fast: true })) };
const samplers = [
  { name: 'Euler, main thread', ...euler, thread: undefined, pool: undefined },
  { name: `Euler, ${pool.count} step threads`, ...euler, thread: undefined, pool },
  { name: 'AnimateLCM, noise on the noise thread, main thread', ...lcm, thread, pool: undefined },
  { name: `AnimateLCM, noise on the noise thread, ${pool.count} step threads`, ...lcm, thread, pool },
  { name: 'AnimateLCM, noise on the main thread, main thread', ...lcm, thread: undefined, pool: undefined },
].filter((s) => s.pool === undefined || pool.count > 0);

for (const s of samplers) {
  const stepMs: number[] = [];
  const jobMs: number[] = [];
  for (let j = 0; j < jobs; j++) {
    const scheduler = createScheduler(s.config);
    scheduler.setTimesteps(s.settings.steps);
    const rng = new NormalGenerator(j);
    const initialNoise = rng.normals(latentSize);
    const stepNoise = new SeededStepNoise(rng, s.thread);
    let standIn = 0;
    let standInJob = 0;
    const start = performance.now();
    let last = start;
    await denoise({
      scheduler,
      dims,
      imageLatent,
      initialNoise,
      guidance: linspace(s.settings.minGuidance, s.settings.maxGuidance, dims.F),
      split: false,
      stepNoise,
      buffers,
      threads: s.pool && { pool: s.pool, scheduler: s.config, timesteps: s.settings.steps },
      unet: async (_sample, _from, n) => {
        // onnxruntime-node runs the session from setImmediate, holding the main thread.
        await new Promise((resolve) => setImmediate(resolve));
        const t = performance.now();
        while (performance.now() - t < unetMs);
        standIn += performance.now() - t;
        return unetOutput.subarray(0, n * latentSize);
      },
      previews: true,
      onStep: () => {
        const now = performance.now();
        stepMs.push(now - last - standIn);
        last = now;
        standInJob += standIn;
        standIn = 0;
      },
    });
    jobMs.push(performance.now() - start - standInJob);
  }
  const { steps, minGuidance, maxGuidance } = s.settings;
  console.log(
    `${s.name} (${steps} steps, guidance ${minGuidance} → ${maxGuidance}): host work ${median(stepMs).toFixed(1)} ms per step (median of ${stepMs.length}), ${median(jobMs).toFixed(1)} ms per job (median of ${jobs})`,
  );
}
// The decoder's first host work on the sampler's latents, once per job.
const unscaleMs = Array.from({ length: jobs }, () => {
  const latents = filled(latentSize, 3);
  const t = performance.now();
  unscaleLatents(latents, SVD_XT_VAE.scaling_factor);
  return performance.now() - t;
});
console.log(`decode's unscale of the latents: ${median(unscaleMs).toFixed(1)} ms per job (median of ${jobs})`);
// Draws that fell back to the main thread would make the first AnimateLCM line read like the second.
console.log(`noise thread: ${thread.usable ? `${thread.draws} draws` : 'failed, noise drawn on the main thread'}`);
console.log(`step threads: ${pool.count === 0 ? 'none on this machine' : pool.usable ? `${pool.count}, used` : 'failed, the host work was done on the main thread'}`);
thread.close();
pool.close();
