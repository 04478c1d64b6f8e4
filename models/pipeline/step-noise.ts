// Where a sampler's fresh noise between steps comes from: the caller's tensors (reference replay)
// or the job's seeded generator, drawn in the order the sampler asks, after the initial noise.
import type { NormalGenerator } from './random.js';

export interface StepNoise {
  /**
   * `n` standard normals for the next step that adds noise. The loop asks before that step's
   * UNet run and awaits the values after it, so a source may draw them meanwhile. The array is
   * the source's: valid until the next draw.
   */
  draw(n: number): Promise<Float32Array>;
  /** Frees what the source holds (the job is over). */
  close(): void;
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

  close(): void {}
}

/** The seed's generator, into one buffer reused from step to step. */
export class SeededStepNoise implements StepNoise {
  private buffer = new Float32Array(0);

  constructor(private readonly rng: NormalGenerator) {}

  async draw(n: number): Promise<Float32Array> {
    if (this.buffer.length !== n) this.buffer = new Float32Array(n);
    return this.rng.fill(this.buffer);
  }

  close(): void {}
}
