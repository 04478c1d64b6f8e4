// Builds one SVD network from a model directory into an .onnx (+ .onnx_data) file.
import { openModelDir, type Component, type SvdModelDir } from './model-dir.js';
import { GraphBuilder, type AttentionImpl, type GraphDType, type SaveResult } from './onnx/graph-builder.js';
import { SafetensorsWeights, type WeightSource } from './onnx/weights.js';
import { formPasses, PORTABLE_FORMS, type GraphForms } from './networks/forms.js';
import type { NetworkContract } from './networks/contracts.js';
import { buildImageEncoder, imageEncoderContract } from './networks/image-encoder.js';
import { buildUNet, unetContract } from './networks/unet.js';
import { buildVaeDecoder, buildVaeEncoder, vaeDecoderContract, vaeEncoderContract } from './networks/vae.js';

type ComponentKey = 'unet' | 'vae' | 'imageEncoder';

interface NetworkEntry {
  /** The model directory's component whose config and weights the network is built from. */
  component: ComponentKey;
  /** The network's inputs and outputs (names, types, shapes): what its graph declares and its sessions are fed. */
  contract(model: SvdModelDir): NetworkContract;
  define(b: GraphBuilder, model: SvdModelDir, forms: GraphForms): void;
  /** Whether the forms' image layout applies to the network's graph (the two that run every step or chunk); the others stay NCHW. */
  layoutFromForms: boolean;
  /** The graph's precision given the requested one. */
  dtype(model: SvdModelDir, requested: GraphDType): GraphDType;
}

/** Ties a network's graph and precision rule to the one component they read. */
function network<K extends ComponentKey>(
  component: K,
  contract: (config: SvdModelDir[K]['config']) => NetworkContract,
  define: (b: GraphBuilder, c: SvdModelDir[K], forms: GraphForms) => void,
  opts: { dtype?: (c: SvdModelDir[K], requested: GraphDType) => GraphDType; layoutFromForms?: boolean } = {},
): NetworkEntry {
  const dtype = opts.dtype ?? ((_, requested) => requested);
  return {
    component,
    contract: (model) => contract(model[component].config),
    define: (b, model, forms) => define(b, model[component], forms),
    dtype: (model, requested) => dtype(model[component], requested),
    layoutFromForms: opts.layoutFromForms ?? false,
  };
}

/** The networks of an SVD model, in the order a generation runs them. */
const NETWORK_TABLE = {
  image_encoder: network('imageEncoder', imageEncoderContract, (b, c) => buildImageEncoder(b, c.config)),
  // Stays float32 when the config says so (diffusers' force_upcast).
  vae_encoder: network('vae', vaeEncoderContract, (b, c) => buildVaeEncoder(b, c.config), { dtype: (c, requested) => (c.config.force_upcast ? 'float32' : requested) }),
  unet: network('unet', unetContract, (b, c, forms) => buildUNet(b, c.config, { forms, file: c.configPath }), { layoutFromForms: true }),
  vae_decoder: network('vae', vaeDecoderContract, (b, c, forms) => buildVaeDecoder(b, c.config, { forms }), { layoutFromForms: true }),
} satisfies Record<string, NetworkEntry>;

export type NetworkName = keyof typeof NETWORK_TABLE;
export const NETWORKS = Object.keys(NETWORK_TABLE) as readonly NetworkName[];

export interface BuildOptions {
  dtype: GraphDType;
  attention: AttentionImpl;
  /** Provider-specific forms; default PORTABLE_FORMS. */
  forms?: GraphForms;
}

/** The component (config and weights file) `network` is built from. */
export function componentOf(model: SvdModelDir, network: NetworkName): Component<unknown> {
  return model[NETWORK_TABLE[network].component];
}

/** What `network` takes and gives (names, types, shapes), as its graph declares them. */
export function networkContract(model: SvdModelDir, network: NetworkName): NetworkContract {
  return NETWORK_TABLE[network].contract(model);
}

/** The precision `network` is built in when `requested` is asked for. */
export function networkDType(model: SvdModelDir, network: NetworkName, requested: GraphDType): GraphDType {
  return NETWORK_TABLE[network].dtype(model, requested);
}

/** The graph of `network` in a fresh builder reading weights from `weights`: defined in standard operators, then the forms' passes applied (channels last, fused operators). */
export function defineNetwork(model: SvdModelDir, network: NetworkName, weights: WeightSource, opts: BuildOptions): GraphBuilder {
  const entry = NETWORK_TABLE[network];
  const forms = opts.forms ?? PORTABLE_FORMS;
  const b = new GraphBuilder({ dtype: opts.dtype, attention: opts.attention, weights });
  entry.define(b, model, forms);
  b.applyPasses(formPasses(entry.layoutFromForms ? forms : { ...forms, imageLayout: 'nchw' }));
  return b;
}

export function buildNetworkFile(modelDir: string | SvdModelDir, network: NetworkName, outPath: string, opts: BuildOptions, onProgress?: (written: number, total: number) => void): SaveResult {
  const model = typeof modelDir === 'string' ? openModelDir(modelDir) : modelDir;
  const weights = SafetensorsWeights.open(componentOf(model, network).weightsPath);
  try {
    return defineNetwork(model, network, weights, opts).save(outPath, onProgress);
  } finally {
    weights.close();
  }
}
