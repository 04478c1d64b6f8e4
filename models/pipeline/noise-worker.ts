// The worker thread that draws a job's step noise while the UNet runs (step-noise.ts): the main
// thread is held by onnxruntime-node's session.run for the whole run, so the draw can only
// overlap it from another thread. Each request carries the generator's state and the array to
// fill (transferred both ways); the reply carries the state after the draw.
import { parentPort } from 'node:worker_threads';
import { type GeneratorState, NormalGenerator } from './random.js';

export interface NoiseDraw {
  /** Which request a reply answers (one a cancelled job left behind is answered too). */
  id: number;
  state: GeneratorState;
  out: Float32Array<ArrayBuffer>;
}

parentPort?.on('message', ({ id, state, out }: NoiseDraw) => {
  const rng = NormalGenerator.fromState(state);
  rng.fill(out);
  parentPort!.postMessage({ id, state: rng.state, out } satisfies NoiseDraw, [out.buffer]);
});
