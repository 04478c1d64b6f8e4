// What is known of tensor shapes while a graph is defined: sizes fixed by the config (channels,
// patch counts) are numbers, sizes chosen at run time (batch, frames, height, width) are null.
// An unknown rank is an absent shape. The rules follow the ONNX operators they describe, and
// reject what the operator would reject when the sizes involved are known.

/** A static shape: one entry per axis, null where the size is only known at run time. */
export type Shape = readonly (number | null)[];

export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export const formatShape = (s: Shape | undefined) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '[unknown rank]');

/** Numpy broadcasting of two shapes (Add, Mul, Expand, MatMul's batch axes). */
export function broadcast(a: Shape | undefined, b: Shape | undefined, op: string): Shape | undefined {
  if (!a || !b) return undefined;
  const rank = Math.max(a.length, b.length);
  const out: (number | null)[] = [];
  for (let i = 0; i < rank; i++) {
    const x = i < rank - a.length ? 1 : a[i - (rank - a.length)]!;
    const y = i < rank - b.length ? 1 : b[i - (rank - b.length)]!;
    if (x === 1) out.push(y);
    else if (y === 1) out.push(x);
    else if (x === null) out.push(y);
    else if (y === null || x === y) out.push(x);
    else throw new ShapeError(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
  }
  return out;
}

/** [..., M, K] · [..., K, N] → [..., M, N] (both of rank 2 or more). */
export function matmulShape(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a || !b) return undefined;
  if (a.length < 2 || b.length < 2) return undefined;
  const k1 = a[a.length - 1];
  const k2 = b[b.length - 2];
  if (k1 != null && k2 != null && k1 !== k2) throw new ShapeError(`MatMul: ${formatShape(a)} · ${formatShape(b)}: inner sizes ${k1} and ${k2} differ`);
  const batch = broadcast(a.slice(0, -2), b.slice(0, -2), 'MatMul');
  return [...batch!, a[a.length - 2]!, b[b.length - 1]!];
}

/** Conv on [N, C, spatial...] with weights [M, C / group, kernel...]. */
export function convShape(x: Shape | undefined, w: Shape | undefined, opts: { strides?: readonly number[]; pads?: readonly number[]; group?: number }): Shape | undefined {
  if (!x || !w) return undefined;
  const spatial = x.length - 2;
  const group = opts.group ?? 1;
  const inC = x[1];
  if (inC != null && w[1] != null && inC !== w[1] * group) {
    throw new ShapeError(`Conv: input ${formatShape(x)} has ${inC} channels but the weights ${formatShape(w)} take ${w[1] * group}`);
  }
  const out: (number | null)[] = [x[0]!, w[0]!];
  for (let i = 0; i < spatial; i++) {
    const size = x[2 + i];
    const k = w[2 + i];
    const pad = (opts.pads?.[i] ?? 0) + (opts.pads?.[i + spatial] ?? 0);
    out.push(size == null || k == null ? null : Math.floor((size + pad - k) / (opts.strides?.[i] ?? 1)) + 1);
  }
  return out;
}

/**
 * Reshape to `target` (the known contents of the shape input): 0 copies the input's size at
 * that axis, −1 takes what is left when every other size is known.
 */
export function reshapeShape(x: Shape | undefined, target: Shape | undefined): Shape | undefined {
  if (!target) return undefined;
  const out = target.map((d, i) => (d === 0 ? (x?.[i] ?? null) : d));
  const free = out.indexOf(-1);
  if (free >= 0) {
    const rest = out.filter((_, i) => i !== free);
    const known = x?.every((d) => d !== null) && rest.every((d) => d !== null);
    out[free] = known ? product(x as number[]) / product(rest as number[]) : null;
  }
  if (x?.every((d) => d !== null) && out.every((d) => d !== null) && product(x as number[]) !== product(out as number[])) {
    throw new ShapeError(`Reshape: cannot view ${formatShape(x)} as ${formatShape(target)}`);
  }
  return out;
}

export function transposeShape(x: Shape | undefined, perm: readonly number[]): Shape | undefined {
  if (!x) return undefined;
  if (perm.length !== x.length) throw new ShapeError(`Transpose: permutation [${perm}] for a tensor of rank ${x.length}`);
  return perm.map((p) => x[p]!);
}

export function concatShape(xs: readonly (Shape | undefined)[], axis: number): Shape | undefined {
  if (xs.some((s) => !s)) return undefined;
  const shapes = xs as Shape[];
  const rank = shapes[0]!.length;
  const a = axis < 0 ? axis + rank : axis;
  return shapes[0]!.map((_, i) => {
    const sizes = shapes.map((s) => s[i]!);
    if (i === a) return sizes.every((d) => d !== null) ? (sizes as number[]).reduce((p, q) => p + q, 0) : null;
    const known = sizes.filter((d): d is number => d !== null);
    if (known.some((d) => d !== known[0])) throw new ShapeError(`Concat on axis ${axis}: ${shapes.map(formatShape).join(', ')} differ on axis ${i}`);
    return known[0] ?? null;
  });
}

/** Slice with fixed bounds: the sliced axes' sizes where they are known. */
export function sliceShape(x: Shape | undefined, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Shape | undefined {
  if (!x) return undefined;
  const out = [...x];
  axes.forEach((axis, i) => {
    const a = axis < 0 ? axis + x.length : axis;
    const size = x[a];
    if (size == null) {
      out[a] = null;
      return;
    }
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
    out[a] = Math.max(clamp(ends[i]!) - clamp(starts[i]!), 0);
  });
  return out;
}

export function unsqueezeShape(x: Shape | undefined, axes: readonly number[]): Shape | undefined {
  if (!x) return undefined;
  const rank = x.length + axes.length;
  const at = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const out: (number | null)[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(at.has(i) ? 1 : x[j++]!);
  return out;
}

/** Gather along `axis`: that axis is replaced by the indices' shape. */
export function gatherShape(x: Shape | undefined, indices: Shape | undefined, axis: number): Shape | undefined {
  if (!x || !indices) return undefined;
  const a = axis < 0 ? axis + x.length : axis;
  return [...x.slice(0, a), ...indices, ...x.slice(a + 1)];
}

function product(ds: readonly number[]): number {
  return ds.reduce((a, b) => a * b, 1);
}
