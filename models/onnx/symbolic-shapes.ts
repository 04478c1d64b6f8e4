// Sizes of a defined graph as products of its run-time sizes (batch·frames, height·width/64),
// for a pass that must know whether a Reshape only splits and merges neighbouring axes: equal
// products are equal sizes whatever the run-time values. What cannot be followed gets a fresh
// name of its own, equal to nothing else, so a pass that relies on it only ever says "unknown".
import type { Initializer, NodeRecord, OnnxWriter } from './onnx-writer.js';

/** k · s1 · s2 · …: a whole coefficient times named run-time sizes (sorted, repeats allowed). */
export interface SymDim {
  readonly k: number;
  readonly of: readonly string[];
}

export const symNumber = (k: number): SymDim => ({ k, of: [] });

export function symMul(a: SymDim, b: SymDim): SymDim {
  return { k: a.k * b.k, of: [...a.of, ...b.of].sort() };
}

/** a / b where it is a product of the same kind, else undefined. */
export function symDiv(a: SymDim, b: SymDim): SymDim | undefined {
  if (b.k === 0 || a.k % b.k !== 0) return undefined;
  const rest = [...a.of];
  for (const s of b.of) {
    const i = rest.indexOf(s);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return { k: a.k / b.k, of: rest };
}

export function symEq(a: SymDim, b: SymDim): boolean {
  return a.k === b.k && a.of.length === b.of.length && a.of.every((s, i) => s === b.of[i]);
}

const isOne = (d: SymDim) => d.k === 1 && d.of.length === 0;
const product = (ds: readonly SymDim[]) => ds.reduce(symMul, symNumber(1));

/**
 * How a Reshape from `from` to `to` regroups axes: runs of input axes and the runs of output
 * axes they become, in order (a run of one on each side: the axis is kept). Undefined where the
 * sizes do not show it.
 */
export function reshapeGroups(from: readonly SymDim[], to: readonly SymDim[]): { from: number[]; to: number[] }[] | undefined {
  const groups: { from: number[]; to: number[] }[] = [];
  let [i, j] = [0, 0];
  while (i < from.length && j < to.length) {
    const g = { from: [i], to: [j] };
    let [a, b] = [from[i]!, to[j]!];
    i++;
    j++;
    while (!symEq(a, b)) {
      if (symDiv(b, a) && i < from.length) {
        g.from.push(i);
        a = symMul(a, from[i++]!);
      } else if (symDiv(a, b) && j < to.length) {
        g.to.push(j);
        b = symMul(b, to[j++]!);
      } else return undefined;
    }
    groups.push(g);
  }
  // Leftover size-1 axes join the last run.
  const last = groups[groups.length - 1];
  const rest = [...from.slice(i).map((d, n) => ({ d, side: last?.from, axis: i + n })), ...to.slice(j).map((d, n) => ({ d, side: last?.to, axis: j + n }))];
  for (const { d, side, axis } of rest) {
    if (!isOne(d) || !side) return undefined;
    side.push(axis);
  }
  return groups;
}

const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sigmoid', 'Cast', 'Erf', 'Sin', 'Cos', 'Round', 'Clip', 'Identity', 'Softmax', 'LayerNormalization', 'InstanceNormalization', 'Gelu']);
/** com.microsoft operators whose every output has their first input's shape. */
const SAME_SHAPE = new Set(['GroupNorm', 'SkipGroupNorm', 'BiasGelu', 'BiasAdd']);

/** The sizes (and, for small int64 vectors, the elements) of every value of `file`'s graph. */
export class SymbolicShapes {
  private readonly shapes = new Map<string, readonly SymDim[]>();
  private readonly contents = new Map<string, readonly SymDim[]>();
  private fresh = 0;

  constructor(private readonly file: OnnxWriter) {
    for (const name of file.inputNames) {
      const dims = file.inputDims(name);
      if (dims)
        this.shapes.set(
          name,
          dims.map((d) => (typeof d === 'number' ? symNumber(d) : { k: 1, of: [d] })),
        );
    }
    for (const node of file.nodeList) this.infer(node);
  }

  shape(value: string): readonly SymDim[] | undefined {
    return this.shapes.get(value) ?? this.initializerInfo(value)?.shape;
  }

  /** The elements of a 1-D int64 value, where they are followed. */
  elements(value: string): readonly SymDim[] | undefined {
    return this.contents.get(value) ?? this.initializerInfo(value)?.contents;
  }

  private initializerInfo(value: string): { shape: SymDim[]; contents?: SymDim[] } | undefined {
    const init = this.file.initializer(value);
    if (!init) return undefined;
    return { shape: init.dims.map(symNumber), contents: int64Elements(init)?.map(symNumber) };
  }

  private unknown(): SymDim {
    return { k: 1, of: [`?${this.fresh++}`] };
  }

  /** The node's recorded static shape, its run-time sizes each a fresh unknown. */
  private recorded(node: NodeRecord, i: number): SymDim[] | undefined {
    return node.outputShapes?.[i]?.map((d) => (d === null ? this.unknown() : symNumber(d)));
  }

  private infer(node: NodeRecord): void {
    const ins = node.inputs.map((i) => (i ? this.shape(i) : undefined));
    const int = (name: string) => {
      const a = node.attrs[name];
      return a && 'i' in a ? a.i : undefined;
    };
    let shape: readonly SymDim[] | undefined;
    let contents: readonly SymDim[] | undefined;
    const x = ins[0];
    switch (node.opType) {
      case 'Shape': {
        if (x) {
          const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + x.length : v, 0), x.length);
          contents = x.slice(clamp(int('start') ?? 0), clamp(int('end') ?? x.length));
          shape = [symNumber(contents.length)];
        }
        break;
      }
      case 'Concat': {
        const parts = node.inputs.map((i) => this.elements(i));
        if (parts.every((p) => p)) contents = parts.flatMap((p) => p!);
        const axis = int('axis') ?? 0;
        if (x && ins.every((s) => s?.length === x.length)) {
          const a = axis < 0 ? axis + x.length : axis;
          const sizes = ins.map((s) => s![a]!);
          const sum = sizes.every((d) => d.of.length === 0) ? symNumber(sizes.reduce((t, d) => t + d.k, 0)) : this.unknown();
          shape = x.map((d, i) => (i === a ? sum : d));
        }
        break;
      }
      case 'NhwcConv': {
        const w = ins[1];
        if (x && w && x.length === 4) shape = [x[0]!, ...x.slice(1, 3).map((d, i) => convSize(node, d, w[1 + i]!, i, 2)), w[0]!];
        break;
      }
      case 'BiasSplitGelu': {
        const last = x?.[x.length - 1];
        if (x && last?.of.length === 0) shape = [...x.slice(0, -1), symNumber(last.k / 2)];
        break;
      }
      case 'MultiHeadAttention': {
        const v = ins[2];
        if (x && v && x.length === 3 && v.length === 3) shape = [x[0]!, x[1]!, v[2]!];
        break;
      }
      case 'Reshape': {
        const target = this.elements(node.inputs[1]!);
        if (x && target) shape = reshaped(x, target);
        break;
      }
      case 'Transpose': {
        const perm = node.attrs.perm;
        if (x && perm && 'ints' in perm) shape = perm.ints.map((p) => x[p]!);
        break;
      }
      case 'Unsqueeze': {
        const axes = this.elements(node.inputs[1]!);
        if (x && axes?.every((a) => a.of.length === 0)) {
          const rank = x.length + axes.length;
          const at = new Set(axes.map((a) => (a.k < 0 ? a.k + rank : a.k)));
          const rest = [...x];
          shape = Array.from({ length: rank }, (_, i) => (at.has(i) ? symNumber(1) : rest.shift()!));
        }
        break;
      }
      case 'Expand': {
        const target = this.elements(node.inputs[1]!);
        if (x && target) shape = broadcast([x, target]);
        break;
      }
      case 'MatMul': {
        const w = ins[1];
        if (x && w && x.length >= 2 && w.length >= 2) {
          const batch = broadcast([x.slice(0, -2), w.slice(0, -2)]);
          if (batch) shape = [...batch, x[x.length - 2]!, w[w.length - 1]!];
        }
        break;
      }
      case 'Conv': {
        const w = ins[1];
        if (x && w) shape = [x[0]!, w[0]!, ...x.slice(2).map((d, i) => convSize(node, d, w[2 + i]!, i, x.length - 2))];
        break;
      }
      case 'Resize': {
        const scales = node.inputs[2] ? floatElements(this.file.initializer(node.inputs[2])) : undefined;
        if (x && scales?.length === x.length && scales.every(Number.isInteger)) shape = x.map((d, i) => symMul(d, symNumber(scales[i]!)));
        break;
      }
      default:
        if (ELEMENTWISE.has(node.opType) && ins.every((s) => s)) {
          shape = broadcast(node.opType === 'Clip' ? [x!] : (ins as SymDim[][]));
          if (node.opType === 'Mul' && node.inputs.every((i) => this.elements(i)?.length === 1)) contents = [symMul(this.elements(node.inputs[0]!)![0]!, this.elements(node.inputs[1]!)![0]!)];
        }
    }
    if (SAME_SHAPE.has(node.opType)) shape = x;
    node.outputs.forEach((o, i) => {
      const s = i === 0 || SAME_SHAPE.has(node.opType) ? (shape ?? this.recorded(node, i)) : this.recorded(node, i);
      if (s) this.shapes.set(o, s);
      if (i === 0 && contents) this.contents.set(o, contents);
    });
  }
}

/** Reshape's rule: 0 copies the input size at that axis, −1 is what the others leave. */
function reshaped(x: readonly SymDim[], target: readonly SymDim[]): SymDim[] | undefined {
  const out = target.map((d, i) => (d.of.length === 0 && d.k === 0 ? x[i] : d));
  if (out.some((d) => d === undefined)) return undefined;
  const free = out.findIndex((d) => d!.of.length === 0 && d!.k === -1);
  if (free >= 0) {
    const rest = symDiv(product(x), product(out.filter((_, i) => i !== free) as SymDim[]));
    if (!rest) return undefined;
    out[free] = rest;
  }
  return out as SymDim[];
}

/**
 * Numpy broadcasting. An unknown size beside a known one is 1 or equal to it (the operator runs),
 * so the known one is the result either way.
 */
function broadcast(shapes: readonly (readonly SymDim[])[]): SymDim[] | undefined {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: SymDim[] = [];
  for (let i = 0; i < rank; i++) {
    const sizes = shapes.map((s) => s[i - (rank - s.length)] ?? symNumber(1)).filter((d) => !isOne(d));
    const known = sizes.filter((d) => !d.of.some((s) => s.startsWith('?')));
    if (known.some((d) => !symEq(d, known[0]!))) return undefined;
    out.push(known[0] ?? sizes[0] ?? symNumber(1));
  }
  return out;
}

/** A convolution's output size: the same where the padding keeps it, else a name for the expression. */
function convSize(node: NodeRecord, d: SymDim, k: SymDim, i: number, spatial: number): SymDim {
  const ints = (name: string) => {
    const a = node.attrs[name];
    return a && 'ints' in a ? a.ints : undefined;
  };
  const stride = ints('strides')?.[i] ?? 1;
  const pad = (ints('pads')?.[i] ?? 0) + (ints('pads')?.[i + spatial] ?? 0);
  if (ints('dilations')?.some((v) => v !== 1) || k.of.length > 0) return { k: 1, of: [`?conv:${node.name}:${i}`] };
  if (d.of.length === 0) return symNumber(Math.floor((d.k + pad - k.k) / stride) + 1);
  if (stride === 1 && pad === k.k - 1) return d;
  return { k: 1, of: [`(${d.k}*${d.of.join('*')}+${pad}-${k.k})/${stride}+1`] };
}

/** The elements of an int64 initializer. */
export function int64Elements(init: Initializer | undefined): number[] | undefined {
  if (init?.dtype !== 'int64') return undefined;
  const bytes = init.bytes();
  return Array.from(new BigInt64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), Number);
}

/** The elements of a float32 initializer. */
export function floatElements(init: Initializer | undefined): number[] | undefined {
  if (init?.dtype !== 'float32') return undefined;
  const bytes = init.bytes();
  return Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
}
