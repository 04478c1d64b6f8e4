// Provider-specific ways to express the same networks: named build options, chosen per provider
// by `graphFormsFor` in models/pipeline/runtime.ts. Every form computes the same values.
import type { AttentionImpl } from '../onnx/graph-builder.js';

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
}

/** The forms every provider can run (WebGPU's, which the earlier graphs used). */
export const PORTABLE_FORMS: GraphForms = { temporalAttention: 'matmul', decoderFrameHalves: true };
