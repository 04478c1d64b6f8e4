// The published SVD-XT component configs (stabilityai/stable-video-diffusion-img2vid-xt), for
// building full-size networks with random weights in benchmarks and tests.
import type { AnimateLcmSchedulerConfig, ClipVisionConfig, FeatureExtractorConfig, SchedulerConfig, UNetConfig, VaeConfig } from './configs.js';
import type { SvdModelDir } from './model-dir.js';

export const SVD_XT_UNET: UNetConfig = {
  in_channels: 8,
  out_channels: 4,
  block_out_channels: [320, 640, 1280, 1280],
  down_block_types: ['CrossAttnDownBlockSpatioTemporal', 'CrossAttnDownBlockSpatioTemporal', 'CrossAttnDownBlockSpatioTemporal', 'DownBlockSpatioTemporal'],
  up_block_types: ['UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'],
  layers_per_block: 2,
  transformer_layers_per_block: 1,
  num_attention_heads: [5, 10, 20, 20],
  cross_attention_dim: 1024,
  addition_time_embed_dim: 256,
  projection_class_embeddings_input_dim: 768,
  num_frames: 25,
  sample_size: 96,
};

export const SVD_XT_VAE: VaeConfig = {
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  layers_per_block: 2,
  scaling_factor: 0.18215,
  force_upcast: true,
  norm_num_groups: 32,
};

export const SVD_XT_IMAGE_ENCODER: ClipVisionConfig = {
  hidden_size: 1280,
  intermediate_size: 5120,
  num_hidden_layers: 32,
  num_attention_heads: 16,
  num_channels: 3,
  image_size: 224,
  patch_size: 14,
  projection_dim: 1024,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-5,
};

export const SVD_XT_SCHEDULER: SchedulerConfig = {
  _class_name: 'EulerDiscreteScheduler',
  prediction_type: 'v_prediction',
  sigma_min: 0.002,
  sigma_max: 700,
  use_karras_sigmas: true,
  timestep_type: 'continuous',
  timestep_spacing: 'leading',
  final_sigmas_type: 'zero',
};

/** AnimateLCM-SVD-xt's sampler as the reference app builds it (G-U-N/AnimateLCM, animatelcm_svd/app.py). */
export const ANIMATELCM_SVD_XT_SCHEDULER: AnimateLcmSchedulerConfig = {
  _class_name: 'AnimateLCMSVDStochasticIterativeScheduler',
  num_train_timesteps: 40,
  sigma_min: 0.002,
  sigma_max: 700,
  sigma_data: 1,
  s_noise: 1,
  rho: 7,
  clip_denoised: false,
};

export const SVD_XT_FEATURE_EXTRACTOR: FeatureExtractorConfig = {
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
};

/** SVD-XT's configuration with no files behind it: for building its networks from random weights. */
export const SVD_XT_CONFIG_ONLY: SvdModelDir = {
  root: '(random weights)',
  unet: { dir: '', configPath: '', configText: '', weightsPath: '', config: SVD_XT_UNET },
  vae: { dir: '', configPath: '', configText: '', weightsPath: '', config: SVD_XT_VAE },
  imageEncoder: { dir: '', configPath: '', configText: '', weightsPath: '', config: SVD_XT_IMAGE_ENCODER },
  scheduler: { configPath: '', config: SVD_XT_SCHEDULER },
  featureExtractor: { configPath: '', config: SVD_XT_FEATURE_EXTRACTOR },
};
