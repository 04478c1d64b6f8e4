// CLIPVisionModelWithProjection (transformers) → image_embeds [B, projection_dim].
import type { ClipVisionConfig } from '../configs.js';
import { transform, type GraphBuilder } from '../onnx/graph-builder.js';
import { declareInputs, declareOutput, type NetworkContract } from './contracts.js';
import { layerNorm, linear, selfAttention } from './layers.js';

const CLIP_ATTENTION = { q: 'q_proj', k: 'k_proj', v: 'v_proj', out: 'out_proj' };

/** The image encoder's edges: CLIP-normalised pixels to the projected image embedding. */
export function imageEncoderContract(cfg: ClipVisionConfig) {
  return {
    inputs: [{ name: 'pixel_values', dtype: 'float32', dims: ['batch', cfg.num_channels, cfg.image_size, cfg.image_size] }],
    outputs: [{ name: 'image_embeds', dtype: 'float32', dims: ['batch', cfg.projection_dim] }],
  } as const satisfies NetworkContract;
}

export function buildImageEncoder(b: GraphBuilder, cfg: ClipVisionConfig): void {
  const C = cfg.hidden_size;
  const S = cfg.image_size;
  const P = cfg.patch_size;
  if (S % P !== 0) throw new Error(`image_encoder/config.json: image_size ${S} is not a multiple of patch_size ${P}`);
  if (C % cfg.num_attention_heads !== 0) throw new Error(`image_encoder/config.json: hidden_size ${C} is not divisible by num_attention_heads ${cfg.num_attention_heads}`);
  const positions = (S / P) ** 2 + 1;
  const contract = imageEncoderContract(cfg);
  const { pixel_values: pixels } = declareInputs(b, contract);
  const batch = b.dim(pixels, 0);

  const patchW = b.weight('vision_model.embeddings.patch_embedding.weight', [C, cfg.num_channels, P, P]);
  const patches = b.conv2d(b.cast(pixels, b.dtype), patchW, { strides: [P, P] });
  const tokens = b.transpose(b.reshape(patches, [0, C, -1]), [0, 2, 1]);
  const cls = b.expand(b.weight('vision_model.embeddings.class_embedding', [C], transform.reshape([1, 1, C])), [batch, 1, C]);
  let h = b.add(b.concat([cls, tokens], 1), b.weight('vision_model.embeddings.position_embedding.weight', [positions, C]));
  h = layerNorm(b, h, 'vision_model.pre_layrnorm', cfg.layer_norm_eps);

  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const name = `vision_model.encoder.layers.${i}`;
    h = b.scope(name, () => {
      const attn = selfAttention(b, layerNorm(b, h, `${name}.layer_norm1`, cfg.layer_norm_eps), `${name}.self_attn`, cfg.num_attention_heads, {
        qkvBias: true,
        names: CLIP_ATTENTION,
      });
      const x = b.add(h, attn);
      const fc1 = linear(b, layerNorm(b, x, `${name}.layer_norm2`, cfg.layer_norm_eps), `${name}.mlp.fc1`, cfg.intermediate_size);
      const act = cfg.hidden_act === 'gelu' ? b.gelu(fc1) : b.quickGelu(fc1);
      return b.add(x, linear(b, act, `${name}.mlp.fc2`, C));
    });
  }
  const pooled = layerNorm(b, b.reshape(b.slice(h, [0], [1], [1]), [-1, C]), 'vision_model.post_layernorm', cfg.layer_norm_eps);
  const embeds = linear(b, pooled, 'visual_projection', cfg.projection_dim, { bias: false });
  declareOutput(b, contract, 'image_embeds', b.cast(embeds, 'float32'));
}
