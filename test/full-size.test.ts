// Full-size SVD-XT graphs defined with random weights (nothing written): the parameter counts
// must equal the reference model's, which pins every module and size read from the configs.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../models/onnx/graph-builder.js';
import { graphFormsFor } from '../models/runtime/runtime.js';
import { formPasses } from '../models/networks/forms.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { buildImageEncoder } from '../models/networks/image-encoder.js';
import { buildUNet } from '../models/networks/unet.js';
import { buildVaeDecoder, buildVaeEncoder } from '../models/networks/vae.js';
import { SVD_XT_IMAGE_ENCODER, SVD_XT_UNET, SVD_XT_VAE } from '../models/reference-configs.js';

const builder = () => new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });

describe('full-size SVD-XT networks', () => {
  it('UNet has 1,524,623,082 parameters', () => {
    const b = builder();
    buildUNet(b, SVD_XT_UNET);
    expect(b.parameterCount).toBe(1_524_623_082);
  });
  it('VAE encoder + quant_conv and temporal decoder have 34,163,664 and 63,579,183', () => {
    const enc = builder();
    buildVaeEncoder(enc, SVD_XT_VAE);
    expect(enc.parameterCount).toBe(34_163_592 + 72);
    const dec = builder();
    buildVaeDecoder(dec, SVD_XT_VAE);
    expect(dec.parameterCount).toBe(63_579_183);
  });
  it('CLIP ViT-H/14 image encoder has 632,076,800', () => {
    const b = builder();
    buildImageEncoder(b, SVD_XT_IMAGE_ENCODER);
    expect(b.parameterCount).toBe(632_076_800);
  });

  it('channels last on CUDA: the same parameters, every GroupNorm and inner convolution fused, far fewer transposes', () => {
    const forms = graphFormsFor('cuda');
    for (const build of [(b: GraphBuilder) => buildUNet(b, SVD_XT_UNET, { forms }), (b: GraphBuilder) => buildVaeDecoder(b, SVD_XT_VAE, { forms })]) {
      const nchw = builder();
      build(nchw);
      const nhwc = builder();
      build(nhwc);
      nhwc.applyPasses(formPasses(forms));
      expect(nhwc.parameterCount).toBe(nchw.parameterCount);
      const [a, c] = [nchw.operatorCounts(), nhwc.operatorCounts()];
      expect((c['com.microsoft:GroupNorm'] ?? 0) + (c['com.microsoft:SkipGroupNorm'] ?? 0)).toBe(a.InstanceNormalization);
      expect(c.InstanceNormalization ?? 0).toBe(0);
      // Only the edges stay standard Conv (fewer than 8 channels: the UNet's output, the decoder's latent input and RGB layers).
      expect(c['com.microsoft:NhwcConv']! + (c.Conv ?? 0)).toBe(a.Conv);
      expect(c.Conv ?? 0).toBeLessThanOrEqual(3);
      // What stays: the temporal transformers' [B, F, S, C] ↔ [B, S, F, C] and the network edges.
      expect(c.Transpose!).toBeLessThan(a.Transpose! / 2);
    }
    // Every GEGLU feed-forward (spatial ff, temporal ff_in and ff: three per transformer block) as one BiasSplitGelu.
    const unet = builder();
    buildUNet(unet, SVD_XT_UNET, { forms });
    unet.applyPasses(formPasses(forms));
    expect(unet.operatorCounts()['com.microsoft:BiasSplitGelu']).toBe(3 * 16);
    expect(unet.operatorCounts()['com.microsoft:Gelu'] ?? 0).toBe(0);
  });
});
