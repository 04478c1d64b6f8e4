// Full-size SVD-XT graphs defined with random weights (nothing written): the parameter counts
// must equal the reference model's, which pins every module and size read from the configs.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../models/onnx/graph-builder.js';
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
});
