// The CUDA provider's fused operators as graph passes over the channels-last graph (the standard
// graph after the `channels-last` pass, onnx/channels-last.ts)
// (onnxruntime/python/tools/transformers: fusion_group_norm.py, fusion_nhwc_conv.py,
// fusion_bias_split_gelu.py), and which of them a target runs: chosen from a table of where each
// fused operator is known to work, by provider, onnxruntime version and compute capability,
// never by trying and failing at run time.
import { concatInitializers, initializerValues, intsAttr, sameInts, viewInitializer, type GraphPass, type PassGraph } from '../onnx/graph-passes.js';
import { attr, encodeFloats, type Initializer, type NodeRecord } from '../onnx/onnx-writer.js';
import type { Shape } from '../onnx/static-shapes.js';
import type { Provider } from '../../common/runtime-choices.js';

const MS = 'com.microsoft';

/**
 * Transpose(x → NCHW) · Conv(·, Transpose(W)) · Transpose(→ NHWC), W stored [M, kH, kW, C]
 * (a Conv as the channels-last pass writes it), as one NhwcConv. Its CUDA kernel wants channel counts in multiples of
 * 8: the 3- and 4-channel edges (latents, RGB) stay as they are, small tensors to transpose.
 */
const nhwcConv: GraphPass = {
  name: 'nhwc-conv',
  match(g, back) {
    if (back.opType !== 'Transpose' || !sameInts(intsAttr(back, 'perm'), [0, 2, 3, 1])) return undefined;
    const conv = g.producer(back.inputs[0], 'Conv');
    if (!conv || (conv.attrs.group && 'i' in conv.attrs.group && conv.attrs.group.i !== 1)) return undefined;
    const [xt, wt] = [g.producer(conv.inputs[0], 'Transpose'), g.producer(conv.inputs[1], 'Transpose')];
    if (!xt || !wt || ![xt, wt].every((t) => sameInts(intsAttr(t, 'perm'), [0, 3, 1, 2]))) return undefined;
    const w = g.initializer(wt.inputs[0]);
    if (w?.dims.length !== 4) return undefined;
    const [outC, kH, kW, inC] = w.dims as [number, number, number, number];
    if (outC % 8 !== 0 || inC % 8 !== 0) return undefined;
    const attrs = { kernel_shape: attr.ints([kH, kW]), ...pick(conv, ['strides', 'pads']) };
    const inputs = [xt.inputs[0]!, w.name, ...conv.inputs.slice(2)];
    return { nodes: [xt, wt, conv, back], replacement: [g.node('NhwcConv', inputs, [...back.outputs], attrs, { domain: MS, outputShapes: back.outputShapes })] };
  },
};

/**
 * GroupNorm between transposes, with its SiLU where there is one (ops.ts `groupNorm` as the
 * channels-last pass writes it: Transpose · Reshape · InstanceNormalization · Reshape · affine ·
 * [x·sigmoid(x)] · Transpose), as one com.microsoft GroupNorm on channels last: statistics and
 * the affine in float32, SiLU fused, the [C, 1, 1] scale and bias stored as float32 [C] from the
 * checkpoint's values. Its CUDA kernel needs an even number of channels per group, at most 512,
 * on [N, H, W, C].
 */
const groupNormNhwc: GraphPass = {
  name: 'group-norm-nhwc',
  match(g, back) {
    if (back.opType !== 'Transpose' || !sameInts(intsAttr(back, 'perm'), [0, 2, 3, 1])) return undefined;
    const nodes: NodeRecord[] = [];
    let y = back.inputs[0];
    const siluMul = g.producer(y, 'Mul');
    const sigmoid = siluMul && g.producer(siluMul.inputs[1], 'Sigmoid');
    const silu = sigmoid !== undefined && sigmoid.inputs[0] === siluMul!.inputs[0];
    if (silu) {
      nodes.push(sigmoid, siluMul!);
      y = siluMul!.inputs[0];
    }
    const add = g.producer(y, 'Add');
    const mul = add && g.producer(add.inputs[0], 'Mul');
    const reshapeBack = mul && g.producer(mul.inputs[0], 'Reshape');
    const norm = reshapeBack && g.producer(reshapeBack.inputs[0], 'InstanceNormalization');
    const grouped = norm && g.producer(norm.inputs[0], 'Reshape');
    const toFirst = grouped && g.producer(grouped.inputs[0], 'Transpose');
    if (!add || !mul || !reshapeBack || !norm || !grouped || !toFirst || !sameInts(intsAttr(toFirst, 'perm'), [0, 3, 1, 2])) return undefined;
    const shapeOfInput = g.producer(reshapeBack.inputs[1], 'Shape');
    if (!shapeOfInput || shapeOfInput.inputs[0] !== toFirst.outputs[0] || Object.keys(shapeOfInput.attrs).length > 0) return undefined;
    const target = g.ints(grouped.inputs[1]);
    const [scale, bias] = [perChannelFloat32(g, mul.inputs[1]), perChannelFloat32(g, add.inputs[1])];
    if (target?.length !== 3 || target[0] !== 0 || target[2] !== -1 || !scale || !bias) return undefined;
    const groups = target[1]!;
    const channels = scale.dims[0]!;
    const perGroup = channels / groups;
    if (!Number.isInteger(perGroup) || perGroup % 2 !== 0 || perGroup > 512) return undefined;
    const epsilon = norm.attrs.epsilon;
    if (!epsilon || !('f' in epsilon)) return undefined;
    const attrs = { groups: attr.int(groups), epsilon, activation: attr.int(silu ? 1 : 0), channels_last: attr.int(1) };
    const fused = g.node('GroupNorm', [toFirst.inputs[0]!, scale.name, bias.name], [...back.outputs], attrs, { domain: MS, outputShapes: back.outputShapes });
    return { nodes: [toFirst, grouped, norm, shapeOfInput, reshapeBack, mul, add, ...nodes, back], replacement: [fused] };
  },
};

/** A [C, 1, ...] per-channel initializer of the standard affine as float32 [C] (from its values before storage, where it has them). */
function perChannelFloat32(g: PassGraph, value: string | undefined): Initializer | undefined {
  const init = g.initializer(value);
  if ((init?.dtype !== 'float32' && init?.dtype !== 'float16') || !init.dims.slice(1).every((d) => d === 1)) return undefined;
  const channels = init.dims[0]!;
  const values = () => initializerValues(init);
  const float32: Initializer = { name: g.uniqueName(`${init.name}:float32`), dims: [channels], dtype: 'float32', external: init.external, bytes: () => encodeFloats(values(), 'float32'), values };
  g.addInitializer(float32);
  return float32;
}

/** The widths onnxruntime's CUDA BiasSplitGelu accepts (SD's and SVD's 320, 640 and 1280-wide blocks ×8). */
const BIAS_SPLIT_GELU_WIDTHS = [2560, 5120, 10240];

/**
 * GEGLU as the layers write it, two projections from the halves of the checkpoint's proj and
 * value · Gelu(gate) (layers.ts `feedForwardGeglu`), as one projection of the joined weights and
 * com.microsoft BiasSplitGelu (bias, split and value · gelu(gate) in one pass, exact GELU in
 * float32) on [N, S, 2·inner].
 */
const biasSplitGelu: GraphPass = {
  name: 'bias-split-gelu',
  match(g, mul) {
    if (mul.opType !== 'Mul') return undefined;
    const gelu = g.producer(mul.inputs[1], 'Gelu');
    if (!gelu || gelu.domain !== MS) return undefined;
    const [value, gate] = [linearOf(g, mul.inputs[0]), linearOf(g, gelu.inputs[0])];
    if (!value || !gate || value.x !== gate.x) return undefined;
    const width = value.w.dims[1]! + gate.w.dims[1]!;
    if (!BIAS_SPLIT_GELU_WIDTHS.includes(width)) return undefined;
    const w = concatInitializers(g.uniqueName('geglu_proj_weight'), [value.w, gate.w], 1);
    const bias = concatInitializers(g.uniqueName('geglu_proj_bias'), [value.bias, gate.bias], 0);
    g.addInitializer(w);
    g.addInitializer(bias);
    // BiasSplitGelu takes [N, S, 2·inner]: other ranks go through [N, -1, dim] and back.
    const xShape = g.shape(value.x);
    const dim = value.w.dims[0]!;
    const rows =
      xShape?.length === 3 ? undefined : g.node('Reshape', [value.x, g.int64Constant([0, -1, dim])], [g.uniqueName('geglu_rows')], {}, { outputShapes: [xShape && [xShape[0]!, null, dim]] });
    const rowsShape = rows ? rows.outputShapes![0] : xShape;
    const projected = g.node('MatMul', [rows ? rows.outputs[0]! : value.x, w.name], [g.uniqueName('geglu_proj')], {}, { outputShapes: [rowsShape && [...rowsShape.slice(0, -1), width]] });
    const gatedShape = rowsShape && [...rowsShape.slice(0, -1), width / 2];
    const gated = g.node(
      'BiasSplitGelu',
      [projected.outputs[0]!, bias.name],
      rows ? [g.uniqueName('geglu_gated')] : [...mul.outputs],
      {},
      { domain: MS, outputShapes: [rows ? gatedShape : mul.outputShapes?.[0]] },
    );
    if (!rows) return { nodes: [...value.nodes, ...gate.nodes, gelu, mul], replacement: [projected, gated] };
    const leading = g.node('Shape', [value.x], [g.uniqueName('geglu_leading')], { start: attr.int(0), end: attr.int(-1) }, { outputShapes: [xShape && [xShape.length - 1]] });
    const target = g.node('Concat', [leading.outputs[0]!, g.int64Constant([width / 2])], [g.uniqueName('geglu_shape')], { axis: attr.int(0) }, { outputShapes: [xShape && [xShape.length]] });
    const back = g.node('Reshape', [gated.outputs[0]!, target.outputs[0]!], [...mul.outputs], {}, { outputShapes: mul.outputShapes });
    return { nodes: [...value.nodes, ...gate.nodes, gelu, mul], replacement: [rows, projected, gated, leading, target, back] };
  },
};

/** ops.ts `linear` with a bias: Reshape(x → 2-D) · MatMul(W) · Add(bias) · Reshape(back), W and bias initializers. */
function linearOf(g: PassGraph, value: string | undefined) {
  const back = g.producer(value, 'Reshape');
  const add = back && g.producer(back.inputs[0], 'Add');
  const matmul = add && g.producer(add.inputs[0], 'MatMul');
  const flat = matmul && g.producer(matmul.inputs[0], 'Reshape');
  const [w, bias] = [g.initializer(matmul?.inputs[1]), g.initializer(add?.inputs[1])];
  if (!back || !add || !matmul || !flat || !w || !bias || w.dims.length !== 2 || bias.dims.length !== 1) return undefined;
  return { x: flat.inputs[0]!, w, bias, nodes: [flat, matmul, add, back] };
}

/**
 * A fused GroupNorm of a sum (the time embedding added after a resnet's first convolution, a
 * block's residual before the next block's norm) as one com.microsoft SkipGroupNorm: the Add in
 * the norm's pass over memory, the sum still given where something else reads it. The kernel
 * takes the skip as [N, H, W, C] or [N, 1, 1, C].
 */
const skipGroupNorm: GraphPass = {
  name: 'skip-group-norm',
  match(g, norm) {
    if (norm.opType !== 'GroupNorm' || norm.domain !== MS) return undefined;
    const add = g.producer(norm.inputs[0], 'Add');
    if (!add) return undefined;
    const [a, b] = add.inputs as [string, string];
    const perChannel = (v: string) => g.shape(v)?.length === 4 && g.shape(v)![1] === 1 && g.shape(v)![2] === 1;
    const [x, skip] = perChannel(b) ? [a, b] : perChannel(a) ? [b, a] : [a, b];
    const channels = g.initializer(norm.inputs[1])?.dims[0];
    if (g.shape(x)?.length !== 4 || g.shape(x)![3] !== channels || g.shape(skip)?.[3] !== channels) return undefined;
    if (!perChannel(skip) && !g.sameShape(x, skip)) return undefined;
    if (perChannel(skip) && !g.sameSize(x, 0, skip, 0)) return undefined;
    const sum = add.outputs[0]!;
    const outputs = [...norm.outputs, ...(g.readersOf(sum).length > 1 ? [sum] : [])];
    const fused = g.node('SkipGroupNorm', [x, norm.inputs[1]!, norm.inputs[2]!, skip], outputs, norm.attrs, {
      domain: MS,
      outputShapes: [...(norm.outputShapes ?? [undefined]), add.outputShapes?.[0]],
    });
    return { nodes: [add, norm], replacement: [fused] };
  },
};

/**
 * LayerNormalization of a sum (a block's residual plus its branch, the frame embedding added
 * before a temporal block, or a projection's bias) as one com.microsoft SkipLayerNormalization:
 * the Add in the norm's pass over memory, the sum still given where something else reads it.
 * onnxruntime's CUDA kernel for it reads rows with vector loads, where LayerNormalization's does
 * not. It takes 3-D [N, S, C], and a skip of fewer rows is repeated: a same-shape skip goes in as
 * [-1, 1, C] beside the input; a skip broadcast over the leading axes ([C], [K, C] or
 * [1, …, 1, K, C]) as [1, K, C], the input as [-1, K, C]. A Reshape between the Add and the norm
 * that keeps the last axis (`linear`'s, back to the tokens' shape) is taken in.
 */
const skipLayerNorm: GraphPass = {
  name: 'skip-layer-norm',
  match(g, norm) {
    if (norm.opType !== 'LayerNormalization' || norm.domain || norm.inputs.length !== 3) return undefined;
    const gamma = g.initializer(norm.inputs[1]);
    const channels = gamma?.dims.length === 1 ? gamma.dims[0]! : undefined;
    const normShape = g.shape(norm.inputs[0]!);
    const axis = norm.attrs.axis;
    if (channels === undefined || !g.initializer(norm.inputs[2]) || normShape?.[normShape.length - 1] !== channels) return undefined;
    if (axis && 'i' in axis && axis.i !== -1 && axis.i !== normShape.length - 1) return undefined;
    const view = g.producer(norm.inputs[0], 'Reshape');
    const add = g.producer(view ? view.inputs[0] : norm.inputs[0], 'Add');
    if (!add) return undefined;
    const addShape = g.shape(add.outputs[0]!);
    if (addShape?.[addShape.length - 1] !== channels) return undefined;
    // The shape the results go back to: the Reshape's own target (given in full), or the Add's.
    const target = view?.inputs[1];
    if (view && g.ints(target)?.includes(0)) return undefined;
    const operands = skipLayerNormOperands(g, add, channels);
    if (!operands) return undefined;
    const sum = (view ?? add).outputs[0]!;
    const keepSum = g.readersOf(sum).length > 1;
    const [normed, summed] = [g.uniqueName('skip_ln_out'), g.uniqueName('skip_ln_sum')];
    const rows = operands.input.outputShapes![0];
    const fused = g.node(
      'SkipLayerNormalization',
      [operands.input.outputs[0]!, operands.skip.outputs[0]!, norm.inputs[1]!, norm.inputs[2]!],
      keepSum ? [normed, '', '', summed] : [normed],
      pick(norm, ['epsilon']),
      {
        domain: MS,
        outputShapes: [rows, undefined, undefined, rows],
      },
    );
    const shapeNodes: NodeRecord[] = [];
    let backTo = target;
    if (!backTo) {
      const full = g.node('Shape', [operands.full], [g.uniqueName('skip_ln_shape')], {}, { outputShapes: [[addShape.length]] });
      shapeNodes.push(full);
      backTo = full.outputs[0]!;
    }
    const back = (value: string, out: string) => g.node('Reshape', [value, backTo!], [out], {}, { outputShapes: [g.shape(out)] });
    const outputs = [back(normed, norm.outputs[0]!), ...(keepSum ? [back(summed, sum)] : [])];
    return { nodes: [add, ...(view ? [view] : []), norm], replacement: [...operands.nodes, fused, ...shapeNodes, ...outputs] };
  },
};

/** SkipLayerNormalization's input and skip views of an Add's operands (see `skipLayerNorm`), or undefined where its kernel cannot take them. */
function skipLayerNormOperands(g: PassGraph, add: NodeRecord, channels: number) {
  const [a, b] = add.inputs as [string, string];
  const sum = add.outputs[0]!;
  const reshape = (x: string, dims: string, shape: (number | null)[]) => g.node('Reshape', [x, dims], [g.uniqueName('skip_ln_view')], {}, { outputShapes: [shape] });
  if (g.sameShape(a, b) && g.sameShape(a, sum)) {
    const rows = g.int64Constant([-1, 1, channels]);
    const [input, skip] = [reshape(a, rows, [null, 1, channels]), reshape(b, rows, [null, 1, channels])];
    return { full: a, input, skip, nodes: [input, skip] };
  }
  // The Add broadcasts the smaller operand, so its next-to-last size is the other's or 1: either
  // way [1, K, C] repeated over [-1, K, C] rows is the same sum.
  const shapeOf = (v: string) => g.shape(v) ?? g.initializer(v)?.dims;
  const broadcast = (full: string, small: string) => {
    const s = shapeOf(small);
    return s !== undefined && g.sameShape(full, sum) && s[s.length - 1] === channels && s.slice(0, -2).every((d) => d === 1);
  };
  const [full, small] = broadcast(a, b) ? [a, b] : broadcast(b, a) ? [b, a] : [];
  if (!full || !small) return undefined;
  const smallShape = shapeOf(small)!;
  if (smallShape.length === 1) {
    const [input, skip] = [reshape(full, g.int64Constant([-1, 1, channels]), [null, 1, channels]), reshape(small, g.int64Constant([1, 1, channels]), [1, 1, channels])];
    return { full, input, skip, nodes: [input, skip] };
  }
  // K may be known only at run time: both views take the skip's last two sizes.
  const k = smallShape[smallShape.length - 2]!;
  const kc = g.node('Shape', [small], [g.uniqueName('skip_ln_kc')], { start: attr.int(-2) }, { outputShapes: [[2]] });
  const dims = (lead: number) => g.node('Concat', [g.int64Constant([lead]), kc.outputs[0]!], [g.uniqueName('skip_ln_dims')], { axis: attr.int(0) }, { outputShapes: [[3]] });
  const [inputDims, skipDims] = [dims(-1), dims(1)];
  const [input, skip] = [reshape(full, inputDims.outputs[0]!, [null, k, channels]), reshape(small, skipDims.outputs[0]!, [1, k, channels])];
  return { full, input, skip, nodes: [kc, inputDims, skipDims, input, skip] };
}

/** The widths onnxruntime's CUDA BiasAdd accepts (SD's and SVD's blocks). */
const BIAS_ADD_WIDTHS = [320, 640, 1280];

/**
 * A residual added to a biased projection (ops.ts `linear`: MatMul · Add(bias) · Reshape, then
 * Add(residual)) on [N, S, C] as the projection, a Reshape of it and one com.microsoft BiasAdd
 * (bias and residual in one pass), as onnxruntime's fusion_bias_add.py does for a UNet.
 */
const biasAdd: GraphPass = {
  name: 'bias-add',
  match(g, add) {
    const found = residualAdd(g, add, (projected) => {
      const back = g.producer(projected, 'Reshape');
      const biased = back && g.producer(back.inputs[0], 'Add');
      const matmul = biased && g.producer(biased.inputs[0], 'MatMul');
      const bias = g.initializer(biased?.inputs[1]);
      return back && biased && matmul && bias && g.shape(projected)?.length === 3 ? { back, biased, matmul, bias } : undefined;
    });
    if (!found) return undefined;
    const { back, biased, matmul, bias, residual } = found;
    const view = g.node('Reshape', [matmul.outputs[0]!, back.inputs[1]!], [g.uniqueName('bias_add_input')], {}, { outputShapes: back.outputShapes });
    const fused = biasAddNode(g, view.outputs[0]!, bias, residual, [...add.outputs], add.outputShapes?.[0]);
    return { nodes: [biased, back, add], replacement: [view, fused] };
  },
};

/**
 * Add(residual, biased) in either order, where `biasedOf` finds the biased value and its bias:
 * what BiasAdd takes, a [C] bias of a width its kernel has and a residual of the same shape.
 */
function residualAdd<T extends { bias: Initializer }>(g: PassGraph, add: NodeRecord, biasedOf: (value: string) => T | undefined): (T & { residual: string }) | undefined {
  if (add.opType !== 'Add') return undefined;
  for (const [i, j] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const [residual, value] = [add.inputs[i]!, add.inputs[j]!];
    const biased = biasedOf(value);
    if (biased?.bias.dims.length === 1 && BIAS_ADD_WIDTHS.includes(biased.bias.dims[0]!) && g.sameShape(value, residual)) return { ...biased, residual };
  }
  return undefined;
}

/** com.microsoft BiasAdd: input + bias + skip, on [N, S, C] (input and skip) and [C] (bias). */
function biasAddNode(g: PassGraph, input: string, bias: Initializer, skip: string, outputs: string[], shape: Shape | undefined): NodeRecord {
  return g.node('BiasAdd', [input, bias.name, skip], outputs, {}, { domain: MS, outputShapes: [shape] });
}

/**
 * A residual added to a convolution with a bias (NhwcConv, its result read by that Add alone:
 * a resnet's conv2 and its shortcut, a temporal resnet's conv2 and its input) as the convolution
 * without its bias and one com.microsoft BiasAdd on [N, H·W, C] views: onnxruntime's CUDA
 * convolution adds its bias in a pass of its own, and the Add is another.
 */
const convBiasAdd: GraphPass = {
  name: 'conv-bias-add',
  match(g, add) {
    const found = residualAdd(g, add, (value) => {
      const conv = g.producer(value, 'NhwcConv');
      const bias = g.initializer(conv?.inputs[2]);
      const shape = g.shape(value);
      return conv?.domain === MS && bias && shape?.length === 4 && shape[3] === bias.dims[0] && g.readersOf(value).length === 1 ? { conv, bias } : undefined;
    });
    if (!found) return undefined;
    const { conv, bias, residual } = found;
    const shape = add.outputShapes?.[0];
    const channels = bias.dims[0]!;
    const rowsShape: Shape | undefined = shape && [shape[0]!, shape[1] !== null && shape[2] !== null ? shape[1]! * shape[2]! : null, channels];
    const toRows = g.int64Constant([0, -1, channels]);
    const unbiased = g.node('NhwcConv', conv.inputs.slice(0, 2), [g.uniqueName('conv_unbiased')], conv.attrs, { domain: MS, outputShapes: conv.outputShapes });
    const rows = g.node('Reshape', [unbiased.outputs[0]!, toRows], [g.uniqueName('conv_rows')], {}, { outputShapes: [rowsShape] });
    const skip = g.node('Reshape', [residual, toRows], [g.uniqueName('residual_rows')], {}, { outputShapes: [rowsShape] });
    const fused = biasAddNode(g, rows.outputs[0]!, bias, skip.outputs[0]!, [g.uniqueName('conv_bias_add')], rowsShape);
    const outShape = g.node('Shape', [residual], [g.uniqueName('residual_shape')], {}, { outputShapes: [[4]] });
    const back = g.node('Reshape', [fused.outputs[0]!, outShape.outputs[0]!], [...add.outputs], {}, { outputShapes: add.outputShapes });
    return { nodes: [conv, add], replacement: [unbiased, rows, skip, fused, outShape, back] };
  },
};

/**
 * Exact GELU of a biased projection (ops.ts `gelu`, x·0.5·(1 + erf(x/√2)), or com.microsoft
 * Gelu, of `linear`'s MatMul · Add(bias) · Reshape) as one com.microsoft BiasGelu on the
 * projection, then the Reshape: the bias and the GELU in one pass. Exact, as the reference
 * (FastGelu's tanh approximation is not).
 */
const biasGelu: GraphPass = {
  name: 'bias-gelu',
  match(g, last) {
    const gelu = geluOf(g, last);
    const back = gelu && g.producer(gelu.x, 'Reshape');
    const biased = back && g.producer(back.inputs[0], 'Add');
    const matmul = biased && g.producer(biased.inputs[0], 'MatMul');
    const bias = g.initializer(biased?.inputs[1]);
    if (!gelu || !back || !biased || !matmul || bias?.dims.length !== 1) return undefined;
    const matmulShape = g.shape(matmul.outputs[0]!);
    const fused = g.node('BiasGelu', [matmul.outputs[0]!, bias.name], [g.uniqueName('bias_gelu')], {}, { domain: MS, outputShapes: [matmulShape] });
    const reshaped = g.node('Reshape', [fused.outputs[0]!, back.inputs[1]!], [...last.outputs], {}, { outputShapes: last.outputShapes });
    return { nodes: [biased, back, ...gelu.nodes], replacement: [fused, reshaped] };
  },
};

/** The GELU whose last node is `last`: com.microsoft Gelu(x), or Mul(Mul(x, 0.5), Add(Erf(Mul(x, 1/√2)), 1)). */
function geluOf(g: PassGraph, last: NodeRecord): { x: string; nodes: NodeRecord[] } | undefined {
  if (last.opType === 'Gelu' && last.domain === MS) return { x: last.inputs[0]!, nodes: [last] };
  if (last.opType !== 'Mul') return undefined;
  const half = g.producer(last.inputs[0], 'Mul');
  const plusOne = g.producer(last.inputs[1], 'Add');
  const erf = plusOne && g.producer(plusOne.inputs[0], 'Erf');
  const scaled = erf && g.producer(erf.inputs[0], 'Mul');
  if (!half || !plusOne || !erf || !scaled || half.inputs[0] !== scaled.inputs[0]) return undefined;
  const near = (value: string | undefined, v: number, tolerance: number) => {
    const init = g.initializer(value);
    return init?.dims.every((d) => d === 1) === true && Math.abs(initializerValues(init)[0]! - v) <= tolerance;
  };
  // The constants as the graph's precision stores them (1/√2 in float16 is 0.70703125).
  if (!near(half.inputs[1], 0.5, 0) || !near(plusOne.inputs[1], 1, 0) || !near(scaled.inputs[1], Math.SQRT1_2, 5e-4)) return undefined;
  return { x: half.inputs[0]!, nodes: [scaled, erf, plusOne, half, last] };
}

/**
 * Self-attention's three projections of one input (q, k and v MatMuls feeding com.microsoft
 * MultiHeadAttention) as one MatMul of the joined weights, its result viewed as
 * [B, S, heads, 3, head size]: MultiHeadAttention's packed QKV input (bert_defs.cc; the weights
 * interleaved per head as onnxruntime's fusion_attention_unet.py packs them). One GEMM three
 * times as wide in place of three; only the CUDA kernel takes the packed form.
 */
const packedQkv: GraphPass = {
  name: 'packed-qkv',
  match(g, mha) {
    if (mha.opType !== 'MultiHeadAttention' || mha.domain !== MS || mha.inputs.length !== 3) return undefined;
    const projections = mha.inputs.map((v) => g.producer(v, 'MatMul'));
    if (!projections.every((p) => p)) return undefined;
    const [q, k, v] = projections as [NodeRecord, NodeRecord, NodeRecord];
    const x = q.inputs[0]!;
    const weights = [q, k, v].map((p) => g.initializer(p.inputs[1]));
    const heads = mha.attrs.num_heads;
    if (k.inputs[0] !== x || v.inputs[0] !== x || g.shape(x)?.length !== 3 || !heads || !('i' in heads)) return undefined;
    const [wq] = weights;
    if (wq?.dims.length !== 2 || !weights.every((w) => w && w.dtype === wq.dtype && sameInts([...w.dims], [...wq.dims]))) return undefined;
    const [inF, width] = wq.dims as [number, number];
    const headSize = width / heads.i;
    if (!Number.isInteger(headSize)) return undefined;
    const perHead = weights.map((w) => viewInitializer(w!, [inF, heads.i, headSize]));
    const joined = viewInitializer(concatInitializers(g.uniqueName('qkv_weight'), perHead, 2), [inF, 3 * width]);
    g.addInitializer(joined);
    const xShape = g.shape(x);
    const matmul = g.node('MatMul', [x, joined.name], [g.uniqueName('qkv')], {}, { outputShapes: [xShape && [xShape[0]!, xShape[1]!, 3 * width]] });
    const packed = g.node(
      'Reshape',
      [matmul.outputs[0]!, g.int64Constant([0, 0, heads.i, 3, headSize])],
      [g.uniqueName('qkv_packed')],
      {},
      { outputShapes: [xShape && [xShape[0]!, xShape[1]!, heads.i, 3, headSize]] },
    );
    const attention = g.node('MultiHeadAttention', [packed.outputs[0]!], [...mha.outputs], mha.attrs, { domain: MS, outputShapes: mha.outputShapes });
    return { nodes: [q, k, v, mha], replacement: [matmul, packed, attention] };
  },
};

function pick(node: NodeRecord, names: string[]) {
  return Object.fromEntries(Object.entries(node.attrs).filter(([k]) => names.includes(k)));
}

/** The graph passes by name, in the order they run. */
export const GRAPH_FUSIONS = {
  'nhwc-conv': { pass: nhwcConv, writes: 'NhwcConv' },
  'conv-bias-add': { pass: convBiasAdd, writes: 'BiasAdd (convolution)', after: 'nhwc-conv' },
  'group-norm-nhwc': { pass: groupNormNhwc, writes: 'GroupNorm' },
  'skip-group-norm': { pass: skipGroupNorm, writes: 'SkipGroupNorm', after: 'group-norm-nhwc' },
  'skip-layer-norm': { pass: skipLayerNorm, writes: 'SkipLayerNormalization' },
  'bias-split-gelu': { pass: biasSplitGelu, writes: 'BiasSplitGelu' },
  'bias-gelu': { pass: biasGelu, writes: 'BiasGelu' },
  'bias-add': { pass: biasAdd, writes: 'BiasAdd' },
  'packed-qkv': { pass: packedQkv, writes: 'MultiHeadAttention (packed QKV)' },
} as const satisfies Record<string, { pass: GraphPass; writes: FusedOperator; after?: string }>;

export type GraphFusion = keyof typeof GRAPH_FUSIONS;
export const ALL_FUSIONS = Object.keys(GRAPH_FUSIONS) as readonly GraphFusion[];

/** The passes of the named fusions, in GRAPH_FUSIONS' order. */
export function fusionPasses(fusions: readonly GraphFusion[]): GraphPass[] {
  return ALL_FUSIONS.filter((f) => fusions.includes(f)).map((f) => GRAPH_FUSIONS[f].pass);
}

/** What a graph is built for: the provider, the onnxruntime release that runs it, and the card. */
export interface RuntimeTarget {
  provider: Provider;
  /** onnxruntime-node's version, e.g. '1.30.0'. */
  onnxruntime: string;
  /** The card's compute capability, e.g. 7.5 for a T4; absent where unknown or not CUDA. */
  computeCapability?: number;
}

/** The com.microsoft operators the passes write. */
export type FusedOperator =
  | 'NhwcConv'
  | 'GroupNorm'
  | 'SkipGroupNorm'
  | 'SkipLayerNormalization'
  | 'BiasSplitGelu'
  | 'BiasGelu'
  | 'BiasAdd'
  | 'BiasAdd (convolution)'
  | 'MultiHeadAttention (packed QKV)';

export interface FusedOperatorSupport {
  /** The providers that implement the operator. */
  providers: readonly Provider[];
  /**
   * The oldest onnxruntime release on which the graphs with this operator were run and checked:
   * older releases get the standard operators in its place.
   */
  minOnnxruntime: string;
  /** The lowest compute capability its kernels were checked on; absent: every card the release runs on. */
  minComputeCapability?: number;
  /**
   * false: its graphs run, but were measured no faster than without it (and used more memory), so
   * the provider's default forms leave it out; `SVD_GRAPH_FORMS=fusions=…` names it for experiments.
   */
  chosen?: false;
}

/**
 * Where each fused operator is known to run. The full-size graphs with NhwcConv, GroupNorm and
 * BiasSplitGelu ran correctly on onnxruntime 1.30 and on 1.19.2's CUDA 12 provider (BENCHMARKS.md,
 * the CUDA 12 stand-in), both on sm_90; releases in between are taken to run them too. No card has
 * been excluded yet: a release or card found lacking one gets its bound here (and the standard
 * operators in its place). SkipGroupNorm, BiasGelu, BiasAdd and the packed QKV input ran
 * correctly on onnxruntime 1.29.0 on sm_90 (BENCHMARKS.md, CUDA attempt 15: frames within 1 of 255
 * of the graphs without them); older releases are not known to run them. BiasAdd after a
 * convolution is the same operator on the same shapes ([N, S, C] with a [C] bias), its own entry
 * because the default forms choose it apart from the projections' form. It and
 * SkipLayerNormalization ran correctly on onnxruntime 1.29.0 on sm_90 (BENCHMARKS.md, CUDA
 * attempts 19 and 21: the fixture replay, and `check:fusions` against the standard operators).
 */
export const FUSED_OPERATOR_SUPPORT: Readonly<Record<FusedOperator, FusedOperatorSupport>> = {
  NhwcConv: { providers: ['cuda'], minOnnxruntime: '1.19.2' },
  GroupNorm: { providers: ['cuda'], minOnnxruntime: '1.19.2' },
  SkipGroupNorm: { providers: ['cuda'], minOnnxruntime: '1.29.0', chosen: false },
  SkipLayerNormalization: { providers: ['cuda'], minOnnxruntime: '1.29.0' },
  BiasSplitGelu: { providers: ['cuda'], minOnnxruntime: '1.19.2' },
  BiasGelu: { providers: ['cuda'], minOnnxruntime: '1.29.0', chosen: false },
  BiasAdd: { providers: ['cuda'], minOnnxruntime: '1.29.0', chosen: false },
  'BiasAdd (convolution)': { providers: ['cuda'], minOnnxruntime: '1.29.0' },
  'MultiHeadAttention (packed QKV)': { providers: ['cuda'], minOnnxruntime: '1.29.0', chosen: false },
};

/** The fusions whose operator `target` runs, by FUSED_OPERATOR_SUPPORT (and, for one that rewrites another's result, where that one runs). */
export function fusionsFor(target: RuntimeTarget, support: Readonly<Record<FusedOperator, FusedOperatorSupport>> = FUSED_OPERATOR_SUPPORT): GraphFusion[] {
  const runs = (name: GraphFusion): boolean => {
    const fusion: { writes: FusedOperator; after?: GraphFusion } = GRAPH_FUSIONS[name];
    const s = support[fusion.writes];
    if (s.chosen === false || !s.providers.includes(target.provider) || compareVersions(target.onnxruntime, s.minOnnxruntime) < 0) return false;
    if (fusion.after && !runs(fusion.after)) return false;
    return s.minComputeCapability === undefined || (target.computeCapability !== undefined && target.computeCapability >= s.minComputeCapability);
  };
  return ALL_FUSIONS.filter(runs);
}

/** Orders two dotted release numbers ('1.19.2' < '1.26.0' < '1.30.0'); a pre-release tag is ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) =>
    v
      .split('-')[0]!
      .split('.')
      .map((p) => Number.parseInt(p, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
