// What a network definition writes to: the operator vocabulary (ops.ts), checkpoint weights bound
// through typed transforms (weight-binding.ts), and the file it all becomes (onnx-writer.ts).
import { OnnxWriter, type SaveResult } from './onnx-writer.js';
import { applyPasses, type GraphPass, type GraphRewrite } from './graph-passes.js';
import { Ops, type OpsOptions, type Value } from './ops.js';
import { WeightBinding, type WeightTransform } from './weight-binding.js';
import type { WeightSource } from './weights.js';

export type { SaveResult } from './onnx-writer.js';
export { attr, staticDim, type AttentionImpl, type Dim, type ElemType, type GraphDType, type Shape, type Value } from './ops.js';
export { transform, type WeightTransform } from './weight-binding.js';

export interface BuilderOptions extends OpsOptions {
  weights: WeightSource;
}

export class GraphBuilder extends Ops {
  private readonly weights: WeightBinding;

  constructor(opts: BuilderOptions) {
    const file = new OnnxWriter();
    super(file, opts);
    this.weights = new WeightBinding(file, opts.weights, opts.dtype);
  }

  /** Checkpoint tensor `name`, shape-checked against `shape` (what the config implies), after `transforms`. */
  weight(name: string, shape: readonly number[], ...transforms: WeightTransform[]): Value {
    return this.weights.bind(name, shape, transforms);
  }

  /** Checks that a checkpoint tensor exists with the expected shape (and counts it) without adding it to the graph. */
  checkWeight(name: string, shape: readonly number[]): void {
    this.weights.check(name, shape);
  }

  /** Parameters of the checkpoint the graph accounts for (comparable to torch's numel sum). */
  get parameterCount(): number {
    return this.weights.parameterCount;
  }

  /** Every checkpoint tensor the graph reads or checks, with the shape config.json implies. */
  get checkpointShapes(): ReadonlyMap<string, readonly number[]> {
    return this.weights.checkpointShapes;
  }

  /**
   * Rewrites the defined graph with `passes` (graph-passes.ts), in order, and drops what they
   * leave unread; the graph is finished after this (nothing more is defined on it).
   * Returns how many fusions each pass applied.
   */
  applyPasses(passes: readonly (GraphPass | GraphRewrite)[]): Record<string, number> {
    return applyPasses(this.file, passes);
  }

  get nodeCount(): number {
    return this.file.nodeCount;
  }

  /** Nodes per operator (`domain:op` outside ONNX's own domain). */
  operatorCounts(): Record<string, number> {
    return this.file.operatorCounts();
  }

  /** Writes `<name>.onnx` and `<name>.onnx_data` (all weights, 64-byte aligned). */
  save(modelPath: string, onProgress?: (written: number, total: number) => void): SaveResult {
    return this.file.save(modelPath, onProgress);
  }
}
