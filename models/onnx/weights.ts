// Where a network's weights come from: a safetensors file, or seeded random values for
// benchmarks of full-size networks without downloading them.
import { SafetensorsFile } from '../safetensors.js';

export interface WeightSource {
  /** For error messages: the file or generator the weights come from. */
  readonly description: string;
  /** Stored shape, or undefined where the source accepts any shape (random weights). */
  shapeOf(name: string): readonly number[] | undefined;
  has(name: string): boolean;
  /** Float32 values in the stored (row-major) layout. */
  load(name: string, shape: readonly number[]): Float32Array;
}

export class WeightShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightShapeError';
  }
}

export class SafetensorsWeights implements WeightSource {
  constructor(
    private readonly file: SafetensorsFile,
    private readonly prefix = '',
  ) {}
  get description() {
    return this.file.path;
  }
  static open(path: string, prefix = ''): SafetensorsWeights {
    return new SafetensorsWeights(SafetensorsFile.open(path), prefix);
  }
  has(name: string) {
    return this.file.tensors.has(this.prefix + name);
  }
  shapeOf(name: string) {
    return this.file.tensors.get(this.prefix + name)?.shape;
  }
  load(name: string) {
    return this.file.readFloat32(this.prefix + name);
  }
  /** Same file, names looked up under a prefix (the VAE file holds encoder.* and decoder.*). */
  scoped(prefix: string): SafetensorsWeights {
    return new SafetensorsWeights(this.file, this.prefix + prefix);
  }
  close() {
    this.file.close();
  }
}

/**
 * Deterministic random weights, uniform with variance 1/fan_in so activations stay finite
 * through a full-size network: enough for speed and memory measurements, meaningless output.
 */
export class RandomWeights implements WeightSource {
  readonly description: string;
  constructor(private readonly seed = 1) {
    this.description = `random weights (seed ${seed})`;
  }
  has() {
    return true;
  }
  shapeOf() {
    return undefined;
  }
  load(name: string, shape: readonly number[]): Float32Array {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const lastName = name.split('.').pop() ?? '';
    if (shape.length === 1 && /norm|layer_norm|pre_layrnorm|post_layernorm/.test(name) && lastName === 'weight') return out.fill(1);
    const fanIn = shape.length > 1 ? n / shape[0]! : 1;
    const bound = Math.sqrt(3 / fanIn) * (shape.length === 1 ? 0.1 : 1);
    let s = (this.seed ^ hashString(name)) >>> 0 || 1;
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = (((s >>> 0) / 4294967296) * 2 - 1) * bound;
    }
    return out;
  }
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
