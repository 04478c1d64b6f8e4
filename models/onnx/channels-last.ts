// Channels last as a graph pass over the standard (NCHW) graph, in the manner of onnxruntime's
// layout transformer: every 2-D Conv and every GroupNorm (as ops.ts writes it) is put in its
// channels-last form, standard operators between transposes (Transpose · Conv · Transpose), which
// the fusion passes then turn into NhwcConv and GroupNorm; the values between them stay channels
// last wherever the operators allow, so transposes remain only where a layout really changes.
//
// Each value is kept as a stored tensor and a permutation (stored = transpose(value, perm)).
// Elementwise operators, Concat and Resize run on what is stored; a Transpose only renames;
// a Reshape that splits and merges whole axes (shown by the symbolic sizes) reshapes what is
// stored; everything else reads the value as it is, transposed back once where needed.
import type { GraphRewrite } from './graph-passes.js';
import { attr, ELEMENT_BYTES, type Attr, type Initializer, type NodeRecord, type OnnxWriter } from './onnx-writer.js';
import type { Shape } from './static-shapes.js';
import { floatElements, int64Elements, reshapeGroups, SymbolicShapes } from './symbolic-shapes.js';
import { permute, permuteElements } from './weight-binding.js';

type Perm = readonly number[];
const NHWC: Perm = [0, 2, 3, 1];
const NCHW: Perm = [0, 3, 1, 2];

const identity = (rank: number): Perm => Array.from({ length: rank }, (_, i) => i);
const isIdentity = (p: Perm) => p.every((v, i) => v === i);
const samePerm = (a: Perm, b: Perm) => a.length === b.length && a.every((v, i) => v === b[i]);
const inverse = (p: Perm): Perm => {
  const q: number[] = [];
  p.forEach((v, i) => {
    q[v] = i;
  });
  return q;
};

/** A value as held: `name` is transpose(value, perm). */
interface Stored {
  name: string;
  perm: Perm;
}

/** How an emitted value was made, so that a later change of layout can start from its source. */
type Made = { op: 'Transpose'; src: string; perm: Perm } | { op: 'Unsqueeze'; src: string; axes: readonly number[] };

/** One element of a Reshape target: a number, a size of a value, or a computed [1] int64 value. */
type Element = { kind: 'const'; n: number } | { kind: 'dim'; of: string; axis: number } | { kind: 'value'; name: string };

const UNARY = new Set(['Cast', 'Sigmoid', 'Erf', 'Sin', 'Cos', 'Round', 'Clip']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);
/** Readers that take a value in whichever layout it is held. */
const FOLLOWS_LAYOUT = new Set([...UNARY, ...BINARY, 'Concat', 'Reshape', 'Transpose', 'Unsqueeze', 'Resize', 'Shape', 'Conv']);

export const channelsLast: GraphRewrite = {
  name: 'channels-last',
  rewrite: (file) => new ChannelsLast(file).run(),
};

class ChannelsLast {
  private readonly sym: SymbolicShapes;
  private readonly producers = new Map<string, NodeRecord>();
  private readonly readers = new Map<string, NodeRecord[]>();
  private readonly out: NodeRecord[] = [];
  private readonly stored = new Map<string, Stored>();
  private readonly made = new Map<string, Made>();
  private readonly cache = new Map<string, string>();
  /** Shape nodes, emitted only when a reader asks, for the layout it asks. */
  private readonly lazyShapes = new Map<string, { of: string; start: number; end: number }>();
  /** GroupNorm subgraphs by their last node. */
  private readonly groupNorms = new Map<NodeRecord, NodeRecord[]>();
  private readonly inGroupNorm = new Set<NodeRecord>();
  private regions = 0;

  constructor(private readonly file: OnnxWriter) {
    this.sym = new SymbolicShapes(file);
    for (const node of file.nodeList) {
      for (const o of node.outputs) this.producers.set(o, node);
      for (const i of node.inputs) if (i) this.readers.set(i, [...(this.readers.get(i) ?? []), node]);
    }
  }

  run(): number {
    for (const node of this.file.nodeList) this.findGroupNorm(node);
    for (const node of this.file.nodeList) {
      const region = this.groupNorms.get(node);
      if (region) this.groupNorm(region);
      else if (!this.inGroupNorm.has(node) && !this.rewrite(node)) this.asIs(node);
    }
    this.file.setNodes(this.out);
    return this.regions;
  }

  // ---- the values as held ---------------------------------------------------------------

  private rank(value: string): number | undefined {
    return this.sym.shape(value)?.length;
  }

  private held(value: string): Stored {
    return this.stored.get(value) ?? { name: value, perm: identity(this.rank(value) ?? 0) };
  }

  /** What was known of a value's shape while the graph was defined, permuted as held by `perm`. */
  private staticShape(value: string, perm?: Perm): Shape | undefined {
    const node = this.producers.get(value);
    const shape = node ? node.outputShapes?.[node.outputs.indexOf(value)] : (this.file.inputShape(value) ?? this.file.initializer(value)?.dims);
    return shape && perm ? (perm.length === shape.length ? perm.map((p) => shape[p]!) : undefined) : shape;
  }

  private hold(value: string, name: string, perm: Perm): void {
    this.stored.set(value, { name, perm });
  }

  /** `value` as transpose(value, want), emitting at most one Transpose (or Unsqueeze) for it. */
  private as(value: string, want: Perm): string {
    if (this.lazyShapes.has(value)) return this.shapeValue(value);
    const s = this.held(value);
    if (samePerm(s.perm, want)) return s.name;
    const key = `${value}|${want.join(',')}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const made = this.made.get(s.name);
    let result: string | undefined;
    if (made?.op === 'Transpose') {
      // s.name = transpose(src, q): src holds the value as s.perm ∘ q⁻¹.
      const qInv = inverse(made.perm);
      result = this.transposed(
        value,
        made.src,
        qInv.map((k) => s.perm[k]!),
        want,
      );
    } else if (made?.op === 'Unsqueeze') {
      result = this.unsqueezedAgain(s, made, want);
    }
    result ??= this.transposed(value, s.name, s.perm, want);
    this.cache.set(key, result);
    return result;
  }

  /** `src` holding `value` as `perm`, transposed to hold it as `want`. */
  private transposed(value: string, src: string, perm: Perm, want: Perm): string {
    if (samePerm(perm, want)) return src;
    const inv = inverse(perm);
    const p = want.map((a) => inv[a]!);
    const init = this.file.initializer(src);
    if (init) return this.permutedInitializer(init, p).name;
    const name = this.emit('Transpose', [src], { perm: attr.ints([...p]) }, this.staticShape(value, want));
    this.made.set(name, { op: 'Transpose', src, perm: p });
    return name;
  }

  /** An Unsqueeze's result wanted in another order that only moves its new size-1 axes: the Unsqueeze again, at other axes. */
  private unsqueezedAgain(s: Stored, made: Extract<Made, { op: 'Unsqueeze' }>, want: Perm): string | undefined {
    const axes = unsqueezeAxes(s, made, want);
    if (!axes) return undefined;
    const shape = this.staticShape(made.src);
    const name = this.emit('Unsqueeze', [made.src, this.ints(axes)], {}, shape && unsqueezed(shape, axes));
    this.made.set(name, { op: 'Unsqueeze', src: made.src, axes });
    return name;
  }

  // ---- emitting -------------------------------------------------------------------------

  private emit(opType: string, inputs: string[], attrs: Record<string, Attr>, shape: Shape | undefined, output?: string): string {
    const name = output ?? this.file.uniqueName(`channels_last/${opType}`);
    this.out.push({ opType, name: this.file.uniqueName(`channels_last/${opType}`), inputs, outputs: [name], attrs, outputShapes: [shape] });
    return name;
  }

  /** The node unchanged, reading every input as it is. */
  private asIs(node: NodeRecord): void {
    this.out.push({ ...node, inputs: node.inputs.map((i) => (i ? this.as(i, identity(this.rank(i) ?? 0)) : i)) });
  }

  private ints(values: readonly number[]): string {
    const key = `ints|${values.join(',')}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const name = this.file.uniqueName('channels_last/const');
    const bytes = new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
    this.file.addInitializer({ name, dims: [values.length], dtype: 'int64', external: false, bytes: () => bytes });
    this.cache.set(key, name);
    return name;
  }

  private permutedInitializer(init: Initializer, perm: Perm): Initializer {
    const key = `init|${init.name}|${perm.join(',')}`;
    const cached = this.cache.get(key);
    if (cached) return this.file.initializer(cached)!;
    const permuted: Initializer = {
      name: this.file.uniqueName(`${init.name}:perm`),
      dims: perm.map((p) => init.dims[p]!),
      dtype: init.dtype,
      external: init.external,
      bytes: () => permuteElements(init.bytes(), init.dims, perm, ELEMENT_BYTES[init.dtype]),
    };
    const values = init.values?.bind(init);
    if (values) permuted.values = () => permute(values(), init.dims, perm);
    this.file.addInitializer(permuted);
    this.cache.set(key, permuted.name);
    return permuted;
  }

  // ---- Shape, as its readers want it -----------------------------------------------------

  /** A Shape node's result with its elements in the value's own order. */
  private shapeValue(lazy: string): string {
    const { of, start, end } = this.lazyShapes.get(lazy)!;
    return this.buildElements(Array.from({ length: end - start }, (_, i) => ({ kind: 'dim', of, axis: start + i }) as const));
  }

  /** Shape(x, start, end) of what holds x, once per range. */
  private shapeOfHeld(of: string, start: number, end: number): string {
    const s = this.held(of);
    const key = `shape|${s.name}|${start}|${end}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const attrs: Record<string, Attr> = start === 0 && end === s.perm.length ? {} : { start: attr.int(start), end: attr.int(end) };
    const name = this.emit('Shape', [s.name], attrs, [end - start]);
    this.cache.set(key, name);
    return name;
  }

  /** A 1-D int64 value of these elements: runs of sizes read with one Shape each, runs of numbers as one constant. */
  private buildElements(elements: readonly Element[]): string {
    const parts: string[] = [];
    for (let i = 0; i < elements.length; ) {
      const e = elements[i]!;
      let j = i + 1;
      if (e.kind === 'const') {
        while (j < elements.length && elements[j]!.kind === 'const') j++;
        parts.push(this.ints(elements.slice(i, j).map((c) => (c as { n: number }).n)));
      } else if (e.kind === 'value') {
        parts.push(e.name);
      } else {
        const at = inverse(this.held(e.of).perm);
        const first = at[e.axis]!;
        while (j < elements.length) {
          const next = elements[j]!;
          if (next.kind !== 'dim' || next.of !== e.of || at[next.axis] !== first + (j - i)) break;
          j++;
        }
        parts.push(this.shapeOfHeld(e.of, first, first + (j - i)));
      }
      i = j;
    }
    if (parts.length === 1) return parts[0]!;
    return this.emit('Concat', parts, { axis: attr.int(0) }, [elements.length]);
  }

  /** The elements of a Reshape target as the graph computes them, in pieces (undefined where they cannot be followed). */
  private elementsOf(value: string): { elements: Element[]; pieces: { name: string; from: number; to: number }[] } | undefined {
    const lazy = this.lazyShapes.get(value);
    if (lazy) {
      const elements = Array.from({ length: lazy.end - lazy.start }, (_, i): Element => ({ kind: 'dim', of: lazy.of, axis: lazy.start + i }));
      return { elements, pieces: [{ name: value, from: 0, to: elements.length }] };
    }
    const numbers = int64Elements(this.file.initializer(value));
    if (numbers) return { elements: numbers.map((n) => ({ kind: 'const', n })), pieces: [{ name: value, from: 0, to: numbers.length }] };
    const concat = this.producers.get(value);
    if (concat?.opType === 'Concat') {
      const elements: Element[] = [];
      const pieces: { name: string; from: number; to: number }[] = [];
      for (const input of concat.inputs) {
        const part = this.elementsOf(input);
        if (!part) return undefined;
        pieces.push({ name: input, from: elements.length, to: elements.length + part.elements.length });
        elements.push(...part.elements);
      }
      return { elements, pieces };
    }
    if (this.rank(value) === 1 && this.sym.shape(value)![0]!.k === 1 && this.sym.shape(value)![0]!.of.length === 0) {
      return { elements: [{ kind: 'value', name: value }], pieces: [] };
    }
    return undefined;
  }

  // ---- the rules ------------------------------------------------------------------------

  /** Rewrites `node` for the layouts its inputs are held in; false where it runs as it is. */
  private rewrite(node: NodeRecord): boolean {
    const x = node.inputs[0];
    if (node.domain || !x) return false;
    if (node.opType === 'Shape') {
      const rank = this.rank(x);
      if (rank === undefined) return false;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
      const [start, end] = [node.attrs.start, node.attrs.end].map((a, i) => clamp(a && 'i' in a ? a.i : i === 0 ? 0 : rank)) as [number, number];
      this.lazyShapes.set(node.outputs[0]!, { of: x, start, end });
      return true;
    }
    if (node.opType === 'Conv') return this.conv(node);
    if (node.opType === 'Transpose') return this.transpose(node);
    if (node.opType === 'Unsqueeze') return this.unsqueeze(node);
    if (node.opType === 'Reshape') return this.reshape(node);
    if (BINARY.has(node.opType) || node.opType === 'Concat') return this.sameLayout(node);
    if (this.lazyShapes.has(x) || isIdentity(this.held(x).perm) || node.outputs.length !== 1) return false;
    if (UNARY.has(node.opType)) {
      const s = this.held(x);
      const inputs = node.inputs.map((v, i) => (i === 0 ? s.name : v && this.as(v, identity(this.rank(v) ?? 0))));
      this.heldAs(node, inputs, s.perm, node.attrs);
      return true;
    }
    if (node.opType === 'Resize') return this.resize(node);
    return false;
  }

  /** Emits `node` reading `inputs`, its output held as `perm`. */
  private heldAs(node: NodeRecord, inputs: string[], perm: Perm, attrs: Record<string, Attr>): void {
    const o = node.outputs[0]!;
    const name = isIdentity(perm) ? o : this.file.uniqueName(`${o}:perm`);
    this.out.push({ ...node, inputs, outputs: [name], attrs, outputShapes: [this.staticShape(o, perm)] });
    this.hold(o, name, perm);
  }

  /** A 2-D convolution in its channels-last form (ops.ts's standard operators for it: Transpose · Conv · Transpose). */
  private conv(node: NodeRecord): boolean {
    const [x, w, bias] = node.inputs as [string, string, string | undefined];
    const weights = this.file.initializer(w);
    const group = node.attrs.group;
    if (this.rank(x) !== 4 || weights?.dims.length !== 4 || (group && 'i' in group && group.i !== 1)) return false;
    const first = this.emit('Transpose', [this.as(x, NHWC)], { perm: attr.ints([...NCHW]) }, this.staticShape(x));
    const wt = this.emit('Transpose', [this.permutedInitializer(weights, NHWC).name], { perm: attr.ints([...NCHW]) }, weights.dims);
    const y = node.outputs[0]!;
    this.out.push({ ...node, inputs: bias ? [first, wt, bias] : [first, wt] });
    this.channelsLastOutput(y);
    return true;
  }

  /** Holds `raw` (a Conv or GroupNorm result) channels last, through one Transpose that `as` can see through. */
  private channelsLastOutput(raw: string): void {
    const name = this.emit('Transpose', [raw], { perm: attr.ints([...NHWC]) }, this.staticShape(raw, NHWC));
    this.made.set(name, { op: 'Transpose', src: raw, perm: NHWC });
    this.hold(raw, name, NHWC);
    this.regions++;
  }

  /** ops.ts `groupNorm` (+ SiLU) on a rank-4 value: Reshape · InstanceNormalization · Reshape(Shape(x)) · Mul · Add [· Sigmoid · Mul]. */
  private findGroupNorm(add: NodeRecord): void {
    if (add.opType !== 'Add') return;
    const mul = this.producers.get(add.inputs[0]!);
    const back = mul?.opType === 'Mul' ? this.producers.get(mul.inputs[0]!) : undefined;
    const norm = back?.opType === 'Reshape' ? this.producers.get(back.inputs[0]!) : undefined;
    const grouped = norm?.opType === 'InstanceNormalization' ? this.producers.get(norm.inputs[0]!) : undefined;
    const shape = back && this.producers.get(back.inputs[1]!);
    if (!mul || !back || !norm || grouped?.opType !== 'Reshape' || shape?.opType !== 'Shape' || Object.keys(shape.attrs).length > 0) return;
    const x = grouped.inputs[0]!;
    if (shape.inputs[0] !== x || this.rank(x) !== 4) return;
    if (
      ![mul.inputs[1], add.inputs[1]].every((p) =>
        this.file
          .initializer(p!)
          ?.dims.slice(1)
          .every((d) => d === 1),
      )
    )
      return;
    const nodes = [grouped, norm, shape, back, mul, add];
    const readers = this.readers.get(add.outputs[0]!) ?? [];
    const sigmoid = readers.find((r) => r.opType === 'Sigmoid');
    const silu = sigmoid && readers.find((r) => r.opType === 'Mul' && r.inputs[0] === add.outputs[0] && r.inputs[1] === sigmoid.outputs[0]);
    if (sigmoid && silu && readers.length === 2 && this.readers.get(sigmoid.outputs[0]!)?.length === 1) nodes.push(sigmoid, silu);
    const inside = new Set(nodes);
    const last = nodes[nodes.length - 1]!;
    for (const n of nodes) if (n !== last && n.outputs.some((o) => (this.readers.get(o) ?? []).some((r) => !inside.has(r)) || this.file.outputNames.includes(o))) return;
    this.groupNorms.set(last, nodes);
    for (const n of nodes) this.inGroupNorm.add(n);
  }

  /** The GroupNorm on its input as channels-first between the two transposes of its channels-last form. */
  private groupNorm(nodes: readonly NodeRecord[]): void {
    const x = nodes[0]!.inputs[0]!;
    const first = this.emit('Transpose', [this.as(x, NHWC)], { perm: attr.ints([...NCHW]) }, this.staticShape(x));
    for (const n of nodes) this.out.push({ ...n, inputs: n.inputs.map((i) => (i === x ? first : i)) });
    this.channelsLastOutput(nodes[nodes.length - 1]!.outputs[0]!);
  }

  /** A Transpose only changes how its input is held. */
  private transpose(node: NodeRecord): boolean {
    const [x, perm] = [node.inputs[0]!, node.attrs.perm];
    if (this.lazyShapes.has(x) || !perm || !('ints' in perm) || this.rank(x) !== perm.ints.length) return false;
    const s = this.held(x);
    const pInv = inverse(perm.ints);
    this.hold(
      node.outputs[0]!,
      s.name,
      s.perm.map((a) => pInv[a]!),
    );
    return true;
  }

  /** Unsqueeze of what is held, its new axes where the value has them. */
  private unsqueeze(node: NodeRecord): boolean {
    const [x, axesInput] = node.inputs as [string, string];
    const axes = int64Elements(this.file.initializer(axesInput));
    const rank = this.rank(x);
    if (this.lazyShapes.has(x) || !axes || rank === undefined) return false;
    const outRank = rank + axes.length;
    const added = axes.map((a) => (a < 0 ? a + outRank : a)).sort((a, b) => a - b);
    const kept = identity(outRank).filter((a) => !added.includes(a));
    const s = this.held(x);
    const rest = s.perm.map((a) => kept[a]!);
    const perm = identity(outRank).map((j) => (added.includes(j) ? j : rest.shift()!));
    const o = node.outputs[0]!;
    const name = isIdentity(perm) ? o : this.file.uniqueName(`${o}:perm`);
    this.out.push({ ...node, inputs: [s.name, axesInput], outputs: [name], outputShapes: [this.staticShape(o, perm)] });
    this.made.set(name, { op: 'Unsqueeze', src: s.name, axes: added });
    this.hold(o, name, perm);
    return true;
  }

  /** A Reshape that splits and merges axes kept together in what is held reshapes what is held. */
  private reshape(node: NodeRecord): boolean {
    const [x, target] = node.inputs as [string, string];
    const o = node.outputs[0]!;
    const s = this.held(x);
    const [from, to] = [this.sym.shape(x), this.sym.shape(o)];
    if (this.lazyShapes.has(x) || isIdentity(s.perm) || !from || !to) return false;
    const groups = reshapeGroups(from, to);
    const at = inverse(s.perm);
    if (!groups?.every((g) => g.from.every((a, i) => at[a] === at[g.from[0]!]! + i))) return false;
    const perm = [...groups].sort((g, h) => at[g.from[0]!]! - at[h.from[0]!]!).flatMap((g) => g.to);
    const parts = this.elementsOf(target);
    if (!parts) return false;
    // A 0 copies the size at its own axis: it stays one only where that axis holds the same one.
    if (perm.some((a, j) => parts.elements[a]?.kind === 'const' && (parts.elements[a] as { n: number }).n === 0 && s.perm[j] !== a)) return false;
    const held = perm.map((a) => parts.elements[a]!);
    // Pieces of the target that stay whole and in order are read as they are.
    const elements: Element[] = [];
    for (let j = 0; j < held.length; ) {
      const piece = parts.pieces.find((p) => perm[j] === p.from && p.to - p.from <= held.length - j && perm.slice(j, j + p.to - p.from).every((a, i) => a === p.from + i));
      if (piece) {
        elements.push({ kind: 'value', name: this.as(piece.name, [0]) });
        j += piece.to - piece.from;
      } else elements.push(held[j++]!);
    }
    const name = isIdentity(perm) ? o : this.file.uniqueName(`${o}:perm`);
    this.out.push({ ...node, inputs: [s.name, this.buildElements(elements)], outputs: [name], outputShapes: [this.staticShape(o, perm)] });
    this.hold(o, name, perm);
    return true;
  }

  /** Elementwise operators and Concat on values held alike (size-1 operands broadcast in any layout); Concat along the held axis. */
  private sameLayout(node: NodeRecord): boolean {
    const o = node.outputs[0]!;
    const rank = this.rank(o);
    if (rank === undefined || rank < 2 || node.outputs.length !== 1) return false;
    const full = node.inputs.filter((v) => v && !this.lazyShapes.has(v) && this.rank(v) === rank);
    const candidates = [...full.map((v) => this.held(v).perm), identity(rank)];
    const cost = (perm: Perm) => full.reduce((c, v) => c + this.transposeCost(v, perm), 0) + this.readersCost(o, perm);
    const perm = candidates.reduce((best, p) => (cost(p) < cost(best) ? p : best));
    if (isIdentity(perm)) return false;
    const inputs: string[] = [];
    for (const v of node.inputs) {
      if (this.rank(v) === rank) inputs.push(this.as(v, perm));
      else if (this.sym.shape(v)?.every((d) => d.k === 1 && d.of.length === 0)) inputs.push(v);
      else return false;
    }
    const axis = node.attrs.axis;
    const attrs = node.opType === 'Concat' && axis && 'i' in axis ? { ...node.attrs, axis: attr.int(perm.indexOf(axis.i < 0 ? axis.i + rank : axis.i)) } : node.attrs;
    this.heldAs(node, inputs, perm, attrs);
    return true;
  }

  /** 1 where holding `value` as `perm` takes a Transpose of its data (or reads a Conv or GroupNorm result channels first), else 0. */
  private transposeCost(value: string, perm: Perm): number {
    const s = this.held(value);
    if (samePerm(s.perm, perm) || this.cache.has(`${value}|${perm.join(',')}`) || this.file.initializer(s.name)) return 0;
    const made = this.made.get(s.name);
    return made?.op === 'Unsqueeze' && unsqueezeAxes(s, made, perm) ? 0 : 1;
  }

  /** 1 where `value` held as `perm` must be transposed for one of its readers: held otherwise for a reader that takes it only as it is, or channels first for a Conv or GroupNorm. */
  private readersCost(value: string, perm: Perm): number {
    const readers = this.readers.get(value) ?? [];
    if (isIdentity(perm)) return readers.some((r) => (r.opType === 'Conv' && r.inputs[0] === value) || (this.inGroupNorm.has(r) && r.opType === 'Reshape' && r.inputs[0] === value)) ? 1 : 0;
    return readers.some((r) => !FOLLOWS_LAYOUT.has(r.opType) && !this.inGroupNorm.has(r)) || this.file.outputNames.includes(value) ? 1 : 0;
  }

  /** Resize by fixed scales: the scales in the held order. */
  private resize(node: NodeRecord): boolean {
    const [x, roi, scalesInput] = node.inputs as [string, string, string | undefined];
    const scales = floatElements(this.file.initializer(scalesInput ?? ''));
    const s = this.held(x);
    if (!scales || scales.length !== s.perm.length || node.inputs.length > 3) return false;
    const permuted = this.file.uniqueName('channels_last/scales');
    const bytes = new Uint8Array(Float32Array.from(s.perm, (a) => scales[a]!).buffer);
    this.file.addInitializer({ name: permuted, dims: [scales.length], dtype: 'float32', external: false, bytes: () => bytes });
    this.heldAs(node, [s.name, roi, permuted], s.perm, node.attrs);
    return true;
  }
}

/** Where an Unsqueeze of the same source puts its new axes to hold the value as `want`; undefined where that moves other axes. */
function unsqueezeAxes(s: Stored, made: Extract<Made, { op: 'Unsqueeze' }>, want: Perm): number[] | undefined {
  const added = made.axes.map((a) => s.perm[a]!);
  const kept = s.perm.filter((_, j) => !made.axes.includes(j));
  if (
    !samePerm(
      kept,
      want.filter((a) => !added.includes(a)),
    )
  )
    return undefined;
  return added.map((a) => want.indexOf(a)).sort((a, b) => a - b);
}

function unsqueezed(shape: Shape, axes: readonly number[]): Shape {
  const rest = [...shape];
  return Array.from({ length: shape.length + axes.length }, (_, i) => (axes.includes(i) ? 1 : rest.shift()!));
}
