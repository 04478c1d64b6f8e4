// Builds one SVD network from a model directory into an .onnx (+ .onnx_data) file.
import { openModelDir, type SvdModelDir } from './model-dir.js';
import { GraphBuilder, type AttentionImpl, type GraphDType, type SaveResult } from './onnx/graph-builder.js';
import { PORTABLE_FORMS, type GraphForms } from './networks/forms.js';
import { SafetensorsWeights, type WeightSource } from './onnx/weights.js';
import { buildImageEncoder } from './networks/image-encoder.js';
import { buildUNet } from './networks/unet.js';
import { buildVaeDecoder, buildVaeEncoder } from './networks/vae.js';

export const NETWORKS = ['image_encoder', 'vae_encoder', 'unet', 'vae_decoder'] as const;
export type NetworkName = (typeof NETWORKS)[number];

export interface BuildOptions {
  dtype: GraphDType;
  attention: AttentionImpl;
  /** Provider-specific forms; default PORTABLE_FORMS. */
  forms?: GraphForms;
}

/** Adds the graph of `network` to a fresh builder reading weights from `weights`. */
export function defineNetwork(model: SvdModelDir, network: NetworkName, weights: WeightSource, opts: BuildOptions): GraphBuilder {
  const b = new GraphBuilder({ dtype: opts.dtype, attention: opts.attention, weights });
  const forms = opts.forms ?? PORTABLE_FORMS;
  switch (network) {
    case 'image_encoder':
      buildImageEncoder(b, model.imageEncoder.config);
      break;
    case 'vae_encoder':
      buildVaeEncoder(b, model.vae.config);
      break;
    case 'vae_decoder':
      buildVaeDecoder(b, model.vae.config, { forms });
      break;
    case 'unet':
      buildUNet(b, model.unet.config, { forms, file: model.unet.configPath });
      break;
  }
  return b;
}

export function weightsFileOf(model: SvdModelDir, network: NetworkName): string {
  return network === 'unet' ? model.unet.weightsPath : network === 'image_encoder' ? model.imageEncoder.weightsPath : model.vae.weightsPath;
}

export function buildNetworkFile(
  modelDir: string | SvdModelDir,
  network: NetworkName,
  outPath: string,
  opts: BuildOptions,
  onProgress?: (written: number, total: number) => void,
): SaveResult {
  const model = typeof modelDir === 'string' ? openModelDir(modelDir) : modelDir;
  const weights = SafetensorsWeights.open(weightsFileOf(model, network));
  try {
    return defineNetwork(model, network, weights, opts).save(outPath, onProgress);
  } finally {
    weights.close();
  }
}
