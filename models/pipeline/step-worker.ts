// One StepThreads worker (step-threads.ts): given a job (the scheduler's config and timesteps,
// the shared arrays, its range of the latent values), it waits on the shared control words for
// each phase the main thread starts, runs its range of it (step-work.ts), and counts itself done.
// It stays in that loop until the job ends, then takes the next job's message.
import { parentPort } from 'node:worker_threads';
import { createScheduler } from '../schedulers/scheduler.js';
import { finishStep, scaleInput, type StepArrays } from './step-work.js';
import { CONTROL, PHASE, type StepJobMessage } from './step-threads.js';

parentPort?.on('message', (job: StepJobMessage) => {
  const ctrl = new Int32Array(job.control);
  const scheduler = createScheduler(job.scheduler);
  scheduler.setTimesteps(job.timesteps);
  const view = (b: SharedArrayBuffer | undefined) => (b ? new Float32Array(b) : undefined);
  const buffers = job.latents.map((b) => new Float32Array(b));
  const scaled = new Float32Array(job.scaled);
  const shared = {
    unetOut: new Float32Array(job.unetOut),
    guided: view(job.guided),
    denoised: view(job.denoised),
    noise: view(job.noise),
  };
  const shape = { ...job.shape, guidance: job.shape.guidance && new Float32Array(job.shape.guidance) };
  const [from, to] = job.range;
  let generation = job.generation;
  for (;;) {
    Atomics.wait(ctrl, CONTROL.generation, generation);
    generation = Atomics.load(ctrl, CONTROL.generation);
    const phase = Atomics.load(ctrl, CONTROL.phase);
    if (phase & PHASE.end) return;
    const i = Atomics.load(ctrl, CONTROL.step);
    try {
      // Step i reads latents[i % 2] and writes latents[(i + 1) % 2] (prepare: reads latents[i % 2]).
      const latents = buffers[i % 2]!;
      if (phase & PHASE.finish) {
        const next = buffers[(i + 1) % 2]!;
        const arrays: StepArrays = { ...shared, latents, next, noise: phase & PHASE.noise ? shared.noise : undefined, denoised: phase & PHASE.previews ? shared.denoised : undefined };
        finishStep(scheduler, i, arrays, shape, from, to);
        if (phase & PHASE.prepare) scaleInput(scheduler, i + 1, next, scaled, from, to);
      } else if (phase & PHASE.prepare) {
        scaleInput(scheduler, i, latents, scaled, from, to);
      }
    } catch {
      Atomics.store(ctrl, CONTROL.failed, 1);
    }
    if (Atomics.sub(ctrl, CONTROL.pending, 1) === 1) Atomics.notify(ctrl, CONTROL.pending);
  }
});

parentPort?.postMessage('ready');
