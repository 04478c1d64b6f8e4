// Named rewrites of a defined graph, in the manner of onnxruntime's transformers optimizer
// (fusion_*.py): a network is defined once in standard operators, and a pass finds a subgraph
// by its producers, checks that nothing outside reads its inner values, and puts one fused node
// in its place. Whatever the pass leaves unread (shape helpers, replaced weights) is dropped.
import { ELEMENT_BYTES, type Attr, type Initializer, type NodeRecord, type OnnxWriter } from './onnx-writer.js';
import { halfToFloat } from '../half.js';
import type { Shape } from './static-shapes.js';
import { symEq, SymbolicShapes } from './symbolic-shapes.js';

/** One fused node in place of the matched ones; the last of `nodes` is where it runs. */
export interface Fusion {
  /** The matched nodes, the one whose outputs the fused node takes over last. */
  nodes: readonly NodeRecord[];
  replacement: readonly NodeRecord[];
}

export interface GraphPass {
  readonly name: string;
  /** The fusion rooted at `node` (the last node of the subgraph), or undefined where it does not apply. */
  match(graph: PassGraph, node: NodeRecord): Fusion | undefined;
}

/** A pass that rewrites the whole graph at once (a change of layout, say); returns how many places it changed. */
export interface GraphRewrite {
  readonly name: string;
  rewrite(file: OnnxWriter): number;
}

/** The graph as a pass reads it: producers, readers, known shapes and constants. */
export class PassGraph {
  private readonly producers = new Map<string, NodeRecord>();
  private readonly readers = new Map<string, NodeRecord[]>();
  private readonly outputs: ReadonlySet<string>;
  private readonly gone = new Set<NodeRecord>();
  private readonly substitutes = new Map<NodeRecord, readonly NodeRecord[]>();
  private readonly order = new Map<NodeRecord, number>();
  private symbolicShapes: SymbolicShapes | undefined;

  constructor(private readonly file: OnnxWriter) {
    for (const node of file.nodeList) {
      this.order.set(node, this.order.size);
      for (const o of node.outputs) this.producers.set(o, node);
      for (const i of node.inputs) {
        if (!i) continue;
        const readers = this.readers.get(i);
        if (readers) readers.push(node);
        else this.readers.set(i, [node]);
      }
    }
    this.outputs = new Set(file.outputNames);
  }

  /** The node that computes `value` (undefined for graph inputs and initializers). */
  producer(value: string | undefined, opType?: string): NodeRecord | undefined {
    const node = value === undefined ? undefined : this.producers.get(value);
    return node && (opType === undefined || node.opType === opType) && !this.gone.has(node) ? node : undefined;
  }

  /** The nodes that read `value`. */
  readersOf(value: string): readonly NodeRecord[] {
    return this.readers.get(value) ?? [];
  }

  /** Whether two values have the same shape whatever the run-time sizes (symbolic-shapes.ts). */
  sameShape(a: string, b: string): boolean {
    const [x, y] = [this.symbolic.shape(a), this.symbolic.shape(b)];
    return x !== undefined && y !== undefined && x.length === y.length && x.every((d, i) => symEq(d, y[i]!));
  }

  /** Whether axis `i` of `a` and axis `j` of `b` have the same size whatever the run-time sizes. */
  sameSize(a: string, i: number, b: string, j: number): boolean {
    const [x, y] = [this.symbolic.shape(a)?.[i], this.symbolic.shape(b)?.[j]];
    return x !== undefined && y !== undefined && symEq(x, y);
  }

  private get symbolic(): SymbolicShapes {
    this.symbolicShapes ??= new SymbolicShapes(this.file);
    return this.symbolicShapes;
  }

  /** What was known of `value`'s shape when it was defined. */
  shape(value: string): Shape | undefined {
    const node = this.producers.get(value);
    return node ? node.outputShapes?.[node.outputs.indexOf(value)] : this.file.inputShape(value);
  }

  initializer(value: string | undefined): Initializer | undefined {
    return value === undefined ? undefined : this.file.initializer(value);
  }

  /** The elements of an int64 initializer (a Reshape's target shape, say). */
  ints(value: string | undefined): number[] | undefined {
    const init = this.initializer(value);
    if (init?.dtype !== 'int64') return undefined;
    const bytes = init.bytes();
    return Array.from(new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8), Number);
  }

  /** A new inline int64 constant (a Reshape target, say); returns its name. */
  int64Constant(values: readonly number[]): string {
    const name = this.uniqueName('fused_const');
    const bytes = new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
    this.file.addInitializer({ name, dims: [values.length], dtype: 'int64', external: false, bytes: () => bytes });
    return name;
  }

  uniqueName(prefix: string): string {
    return this.file.uniqueName(prefix);
  }

  addInitializer(init: Initializer): void {
    this.file.addInitializer(init);
  }

  /** A node record for a replacement (outputs named by the caller). */
  node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, Attr>, opts: { domain?: string; outputShapes?: readonly (Shape | undefined)[] } = {}): NodeRecord {
    return { opType, domain: opts.domain, name: this.uniqueName(`fused/${opType}`), inputs, outputs, attrs, outputShapes: opts.outputShapes };
  }

  /**
   * Applies a fusion unless a matched node is already part of another, or a value computed
   * inside it is read outside it (or is a graph output): the last node's outputs are the
   * fusion's, every other one must vanish with it, unless the replacement computes it too
   * (SkipGroupNorm's sum, say) and nothing before the last node reads it.
   */
  apply(fusion: Fusion): boolean {
    const matched = new Set(fusion.nodes);
    const last = fusion.nodes[fusion.nodes.length - 1]!;
    const kept = new Set(fusion.replacement.flatMap((n) => n.outputs));
    if (fusion.nodes.some((n) => this.gone.has(n))) return false;
    for (const node of fusion.nodes) {
      if (node === last) continue;
      for (const o of node.outputs) {
        const outside = (this.readers.get(o) ?? []).filter((r) => !matched.has(r));
        if (kept.has(o) && outside.every((r) => this.order.get(r)! > this.order.get(last)!)) continue;
        if (this.outputs.has(o) || outside.length > 0) return false;
      }
    }
    for (const node of fusion.nodes) this.gone.add(node);
    this.substitutes.set(last, fusion.replacement);
    for (const node of fusion.replacement) for (const o of node.outputs) this.producers.set(o, node);
    return true;
  }

  /** The node list with every applied fusion in place. */
  result(): NodeRecord[] {
    return this.file.nodeList.flatMap((n) => this.substitutes.get(n) ?? (this.gone.has(n) ? [] : [n]));
  }
}

/** Runs `passes` in order over the graph in `file`; returns how many fusions each applied. */
export function applyPasses(file: OnnxWriter, passes: readonly (GraphPass | GraphRewrite)[]): Record<string, number> {
  const applied: Record<string, number> = {};
  for (const pass of passes) {
    let count = 0;
    if ('rewrite' in pass) count = pass.rewrite(file);
    else {
      const graph = new PassGraph(file);
      for (const node of file.nodeList) {
        const fusion = pass.match(graph, node);
        if (fusion && graph.apply(fusion)) count++;
      }
      file.setNodes(graph.result());
    }
    file.removeUnused();
    applied[pass.name] = count;
  }
  return applied;
}

/** Initializers of the same type joined along `axis` (bytes made when the file is written). */
export function concatInitializers(name: string, parts: readonly Initializer[], axis: number): Initializer {
  const [a] = parts as [Initializer];
  for (const b of parts) {
    if (a.dtype !== b.dtype || a.dims.length !== b.dims.length || a.dims.some((d, i) => i !== axis && d !== b.dims[i])) {
      throw new Error(`cannot join ${a.name} [${a.dims.join(', ')}] and ${b.name} [${b.dims.join(', ')}] along axis ${axis}`);
    }
  }
  const dims = a.dims.map((d, i) => (i === axis ? parts.reduce((t, p) => t + p.dims[i]!, 0) : d));
  const rows = a.dims.slice(0, axis).reduce((p, d) => p * d, 1);
  const rowBytes = parts.map((t) => t.dims.slice(axis).reduce((p, d) => p * d, 1) * ELEMENT_BYTES[t.dtype]);
  const join = (data: Uint8Array[], bytesPer: number[]) => {
    const out = new Uint8Array(rows * bytesPer.reduce((t, b) => t + b, 0));
    let at = 0;
    for (let r = 0; r < rows; r++) {
      data.forEach((x, i) => {
        out.set(x.subarray(r * bytesPer[i]!, (r + 1) * bytesPer[i]!), at);
        at += bytesPer[i]!;
      });
    }
    return out;
  };
  const joined: Initializer = {
    name,
    dims,
    dtype: a.dtype,
    external: parts.some((p) => p.external),
    bytes: () =>
      join(
        parts.map((p) => p.bytes()),
        rowBytes,
      ),
  };
  if (parts.every((p) => p.values)) {
    const floatRows = parts.map((t) => t.dims.slice(axis).reduce((p, d) => p * d, 1) * 4);
    joined.values = () => {
      const out = join(
        parts.map((p) => {
          const v = p.values!();
          return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        }),
        floatRows,
      );
      return new Float32Array(out.buffer);
    };
  }
  return joined;
}

/** The same initializer seen with other dims (as many elements, same order). */
export function viewInitializer(init: Initializer, dims: readonly number[]): Initializer {
  if (dims.reduce((p, d) => p * d, 1) !== init.dims.reduce((p, d) => p * d, 1)) throw new Error(`cannot view ${init.name} [${init.dims.join(', ')}] as [${dims.join(', ')}]`);
  return { ...init, dims };
}

/** A float initializer's values: as they were before storage where it keeps them, else read back from its bytes. */
export function initializerValues(init: Initializer): Float32Array {
  if (init.values) return init.values();
  const bytes = init.bytes().slice();
  if (init.dtype === 'float32') return new Float32Array(bytes.buffer);
  if (init.dtype === 'float16') return Float32Array.from(new Uint16Array(bytes.buffer), halfToFloat);
  throw new Error(`${init.name} holds ${init.dtype}, not floats`);
}

/** An attribute's integer list (absent: undefined). */
export function intsAttr(node: NodeRecord, name: string): number[] | undefined {
  const a = node.attrs[name];
  return a && 'ints' in a ? a.ints : undefined;
}

export function sameInts(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}
