// The project's seeded normal generator, written out so a seed means the same noise on every
// machine and provider:
//   - seed: an integer in [0, 2^53); expanded by SplitMix64 into the 128-bit xoshiro128** state;
//   - uniforms: xoshiro128** 32-bit outputs u, mapped to (0, 1) as (u + 0.5) / 2^32;
//   - normals: Box–Muller in float64, both values of each pair used (cos first, then sin),
//     rounded to float32 when stored.
// Draws happen in a fixed order per generation (conditioning-image noise, then the initial
// latents), like the reference pipeline; the values differ from torch's generator.

import { MAX_SEED } from '../../common/settings.js';

export class NormalGenerator {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | undefined;

  constructor(readonly seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`seed must be an integer from 0 to ${MAX_SEED}, got ${seed}`);
    let x = BigInt(seed);
    const mask = (1n << 64n) - 1n;
    const next = () => {
      x = (x + 0x9e3779b97f4a7c15n) & mask;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
      return z ^ (z >> 31n);
    };
    const a = next();
    const b = next();
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** xoshiro128**: next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1). */
  uniform(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** n standard normal float32 values. */
  normals(n: number): Float32Array {
    return this.fill(new Float32Array(n));
  }

  /**
   * Fills `out` with the values `out.length` calls of normal() would give, in their order, both
   * values of a pair stored at once instead of one through the spare (the pipeline draws a
   * video's worth of noise per sampling step).
   */
  fill(out: Float32Array): Float32Array {
    const n = out.length;
    let i = 0;
    if (n > 0 && this.spare !== undefined) {
      out[i++] = this.spare;
      this.spare = undefined;
    }
    const twoPi = 2 * Math.PI;
    while (i < n) {
      const r = Math.sqrt(-2 * Math.log(this.uniform()));
      const theta = twoPi * this.uniform();
      out[i++] = r * Math.cos(theta);
      if (i < n) out[i++] = r * Math.sin(theta);
      else this.spare = r * Math.sin(theta);
    }
    return out;
  }

  /** Where the sequence stands: a generator made from it with fromState() goes on with the same values. */
  get state(): GeneratorState {
    return { seed: this.seed, words: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  set state(state: GeneratorState) {
    if (state.seed !== this.seed) throw new Error(`a generator of seed ${this.seed} cannot take the state of seed ${state.seed}`);
    [this.s0, this.s1, this.s2, this.s3] = state.words;
    this.spare = state.spare;
  }

  static fromState(state: GeneratorState): NormalGenerator {
    const g = new NormalGenerator(state.seed);
    g.state = state;
    return g;
  }
}

/** A NormalGenerator's position in its sequence, as plain data (it crosses to a worker thread). */
export interface GeneratorState {
  seed: number;
  words: [number, number, number, number];
  spare: number | undefined;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A fresh random seed for when the user leaves it empty; the seed used is always reported. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}
