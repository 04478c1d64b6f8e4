// What a network takes and gives: names, element types and shapes, declared once per network
// (next to its build function, listed in the network table) and used both to define the graph's
// edges and to check what a caller feeds a session, as transformers.js checks session inputs
// against the names a model declares: a wrong feed fails here with its name and shape instead of
// deep inside onnxruntime, and a stale .onnx file fails when it is opened.
import type { ElemType, GraphBuilder, Value } from '../onnx/graph-builder.js';

export interface TensorSpec {
  readonly name: string;
  readonly dtype: ElemType;
  /** Fixed sizes, or names of sizes chosen at run time; one name means one size across the network's inputs. */
  readonly dims: readonly (number | string)[];
}

export interface NetworkContract {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

/** Declares the contract's inputs on `b`; returns them by name. */
export function declareInputs<const N extends string>(b: GraphBuilder, contract: NetworkContract & { inputs: readonly (TensorSpec & { name: N })[] }): Record<N, Value> {
  return Object.fromEntries(contract.inputs.map((spec) => [spec.name, b.input(spec.name, spec.dtype, [...spec.dims])])) as Record<N, Value>;
}

/** Makes `value` the contract's output `name` (its type and shape checked against the declaration). */
export function declareOutput(b: GraphBuilder, contract: NetworkContract, name: string, value: Value): void {
  const spec = contract.outputs.find((o) => o.name === name);
  if (!spec) throw new Error(`output ${name} is not declared (declared: ${contract.outputs.map((o) => o.name).join(', ')})`);
  if (value.dtype !== spec.dtype) throw new Error(`output ${name}: declared ${spec.dtype} but the graph computes ${value.dtype}`);
  b.output(value, name, [...spec.dims]);
}

/** A tensor as a feed: its element type as onnxruntime names it ('float32', 'uint8', 'int64') and its dims. */
export interface FeedTensor {
  readonly type: string;
  readonly dims: readonly number[];
}

/**
 * Checks feeds against a network's declared inputs: every input present and nothing else, each
 * of its declared type and rank, fixed sizes equal, and a named size the same wherever it appears.
 */
export function checkFeeds(network: string, contract: NetworkContract, feeds: Readonly<Record<string, FeedTensor>>): void {
  const declared = contract.inputs.map((i) => i.name);
  const missing = declared.filter((n) => !(n in feeds));
  const unknown = Object.keys(feeds).filter((n) => !declared.includes(n));
  if (missing.length || unknown.length) {
    throw new Error(
      `${network}: ${[missing.length ? `missing input ${missing.join(', ')}` : '', unknown.length ? `unknown input ${unknown.join(', ')}` : ''].filter(Boolean).join('; ')} (it takes ${declared.join(', ')})`,
    );
  }
  const sizes = new Map<string, { size: number; from: string }>();
  for (const spec of contract.inputs) {
    const feed = feeds[spec.name]!;
    const expected = `${spec.dtype} [${spec.dims.join(', ')}]`;
    const got = `${feed.type} [${feed.dims.join(', ')}]`;
    if (feed.type !== spec.dtype || feed.dims.length !== spec.dims.length) throw new Error(`${network}: input ${spec.name} must be ${expected}, got ${got}`);
    spec.dims.forEach((d, i) => {
      const size = feed.dims[i]!;
      if (typeof d === 'number') {
        if (size !== d) throw new Error(`${network}: input ${spec.name} must be ${expected}, got ${got}`);
        return;
      }
      const seen = sizes.get(d);
      if (seen && seen.size !== size) throw new Error(`${network}: ${d} is ${seen.size} in ${seen.from} but ${size} in ${spec.name} (${got})`);
      sizes.set(d, seen ?? { size, from: spec.name });
    });
  }
}

/** Checks that an opened session has the declared input and output names (a graph file from an older build has not). */
export function checkSessionNames(network: string, contract: NetworkContract, session: { readonly inputNames: readonly string[]; readonly outputNames: readonly string[] }): void {
  const differs = (declared: readonly TensorSpec[], actual: readonly string[]) => declared.length !== actual.length || declared.some((s) => !actual.includes(s.name));
  if (differs(contract.inputs, session.inputNames) || differs(contract.outputs, session.outputNames)) {
    throw new Error(
      `${network}: the graph file takes ${session.inputNames.join(', ')} and gives ${session.outputNames.join(', ')}, but this version declares ${contract.inputs.map((s) => s.name).join(', ')} → ${contract.outputs.map((s) => s.name).join(', ')}; rebuild the model's graphs (delete its converted .onnx files)`,
    );
  }
}
