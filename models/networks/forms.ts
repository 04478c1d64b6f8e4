// Provider-specific ways to express the same networks: named build options, chosen per provider
// by `graphFormsFor` in models/runtime/runtime.ts. Every form computes the same values.
import type { VaeConfig } from '../configs.js';
import { channelsLast } from '../onnx/channels-last.js';
import type { AttentionImpl } from '../onnx/graph-builder.js';
import type { GraphPass, GraphRewrite } from '../onnx/graph-passes.js';
import { fusionPasses, type GraphFusion } from './fusions.js';

/** How a network's image tensors are laid out: ONNX's own [N, C, H, W], or channels last [N, H, W, C]. */
export type ImageLayout = 'nchw' | 'nhwc';

export interface GraphForms {
  /**
   * Temporal self-attention (sequences of one frame count, 18,432 of them at 1024x576):
   * WebGPU runs plain MatMul attention faster there (7.08 vs 7.22 s per UNet step on an H100);
   * the CUDA provider's fused kernel handles short sequences well.
   */
  temporalAttention: AttentionImpl;
  /**
   * The decoder's widest full-resolution layers run on two halves of the chunk: WebGPU fails a
   * convolution whose output passes ~2 GiB (8 frames x 256 channels at 1024x576).
   */
  decoderFrameHalves: boolean;
  /**
   * The image tensors' layout in the UNet and the decoder, made by the `channels-last` graph pass
   * (onnx/channels-last.ts) from the standard graph: channels last on CUDA, with its NhwcConv and GroupNorm + SiLU in one pass (instead of InstanceNormalization,
   * affine and SiLU); no transposes around the temporal layers. H100: 0.755 → 0.63 s per UNet
   * step, decoder 1.1 → 0.85 s per 8 frames (BENCHMARKS.md, CUDA attempt 11).
   */
  imageLayout: ImageLayout;
  /**
   * The graph passes (fusions.ts) that put the com.microsoft operators only onnxruntime's CUDA
   * provider implements (NhwcConv, GroupNorm with fused SiLU, BiasSplitGelu) in place of standard
   * operators, chosen per runtime by `fusionsFor`; without them the graph stays standard.
   */
  fusions: readonly GraphFusion[];
}

/** The forms every provider can run (WebGPU's, which the earlier graphs used). */
export const PORTABLE_FORMS: GraphForms = { temporalAttention: 'matmul', decoderFrameHalves: true, imageLayout: 'nchw', fusions: [] };

/**
 * The most frames a decoder chunk may hold where a provider caps one tensor at `maxTensorBytes`
 * (WebGPU: about 2 GiB per buffer): the decoder's widest
 * full-resolution tensors are the last level's (block_out_channels[0] wide, the whole chunk) and,
 * with frame halves, the previous level's width on half the chunk. 12 frames at 1024x576 in fp16.
 */
export function maxDecoderChunk(forms: GraphForms, maxTensorBytes: number | undefined, cfg: VaeConfig, width: number, height: number, bytesPerValue: number): number {
  if (maxTensorBytes === undefined) return Number.POSITIVE_INFINITY;
  const ch = cfg.block_out_channels;
  const perFrame = (channels: number) => channels * width * height * bytesPerValue;
  const whole = Math.floor(maxTensorBytes / perFrame(ch[0]!));
  const wide = ch.length > 1 ? Math.floor(maxTensorBytes / perFrame(ch[1]!)) * (forms.decoderFrameHalves ? 2 : 1) : whole;
  return Math.max(1, Math.min(whole, wide));
}

/** The passes that make a network's standard graph this form: channels last where asked, then the fused operators. */
export function formPasses(forms: GraphForms): (GraphPass | GraphRewrite)[] {
  return [...(forms.imageLayout === 'nhwc' ? [channelsLast] : []), ...fusionPasses(forms.fusions)];
}
