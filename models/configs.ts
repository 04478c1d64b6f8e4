// zod schemas for the diffusers / transformers config.json files of an SVD repository.
// Structural keys are required: a missing one is an error, never a silent SVD-XT default.
import { z } from 'zod';

const perLevel = (item: z.ZodNumber) => z.union([item, z.array(item).nonempty()]);

export const unetConfigSchema = z.object({
  in_channels: z.number().int().positive(),
  out_channels: z.number().int().positive(),
  block_out_channels: z.array(z.number().int().positive()).nonempty(),
  down_block_types: z.array(z.enum(['CrossAttnDownBlockSpatioTemporal', 'DownBlockSpatioTemporal'])).nonempty(),
  up_block_types: z.array(z.enum(['UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'])).nonempty(),
  layers_per_block: perLevel(z.number().int().positive()),
  transformer_layers_per_block: perLevel(z.number().int().positive()).default(1),
  num_attention_heads: perLevel(z.number().int().positive()),
  cross_attention_dim: perLevel(z.number().int().positive()),
  addition_time_embed_dim: z.number().int().positive(),
  projection_class_embeddings_input_dim: z.number().int().positive(),
  num_frames: z.number().int().positive(),
  sample_size: z.number().int().positive().nullable().optional(),
});
export type UNetConfig = z.infer<typeof unetConfigSchema>;

export const vaeConfigSchema = z.object({
  in_channels: z.number().int().positive(),
  out_channels: z.number().int().positive(),
  latent_channels: z.number().int().positive(),
  block_out_channels: z.array(z.number().int().positive()).nonempty(),
  down_block_types: z.array(z.literal('DownEncoderBlock2D')).nonempty(),
  layers_per_block: z.number().int().positive(),
  scaling_factor: z.number().positive(),
  force_upcast: z.boolean().default(true),
  norm_num_groups: z.number().int().positive().default(32),
});
export type VaeConfig = z.infer<typeof vaeConfigSchema>;

export const clipVisionConfigSchema = z.object({
  hidden_size: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_channels: z.number().int().positive().default(3),
  image_size: z.number().int().positive(),
  patch_size: z.number().int().positive(),
  projection_dim: z.number().int().positive(),
  hidden_act: z.enum(['gelu', 'quick_gelu']),
  layer_norm_eps: z.number().positive(),
});
export type ClipVisionConfig = z.infer<typeof clipVisionConfigSchema>;

export const eulerSchedulerConfigSchema = z.object({
  _class_name: z.literal('EulerDiscreteScheduler'),
  prediction_type: z.literal('v_prediction'),
  sigma_min: z.number().positive(),
  sigma_max: z.number().positive(),
  use_karras_sigmas: z.literal(true),
  timestep_type: z.literal('continuous'),
  timestep_spacing: z.enum(['leading', 'linspace', 'trailing']),
  final_sigmas_type: z.enum(['zero', 'sigma_min']).default('zero'),
});
export type EulerSchedulerConfig = z.infer<typeof eulerSchedulerConfigSchema>;

/** AnimateLCM-SVD's consistency sampler; defaults are the reference app's (animatelcm_svd/app.py). */
export const animateLcmSchedulerConfigSchema = z.object({
  _class_name: z.literal('AnimateLCMSVDStochasticIterativeScheduler'),
  num_train_timesteps: z.number().int().positive().default(40),
  sigma_min: z.number().positive().default(0.002),
  sigma_max: z.number().positive().default(700),
  sigma_data: z.number().positive().default(1),
  s_noise: z.number().nonnegative().default(1),
  rho: z.number().positive().default(7),
  clip_denoised: z.boolean().default(false),
});
export type AnimateLcmSchedulerConfig = z.infer<typeof animateLcmSchedulerConfigSchema>;

/** The samplers this project implements, by the `_class_name` of scheduler_config.json. */
export const SCHEDULER_CLASSES = ['EulerDiscreteScheduler', 'AnimateLCMSVDStochasticIterativeScheduler'] as const;

export const schedulerConfigSchema = z
  .object({ _class_name: z.string() })
  .loose()
  .superRefine((raw, ctx) => {
    if (!(SCHEDULER_CLASSES as readonly string[]).includes(raw._class_name))
      ctx.addIssue({ code: 'custom', path: ['_class_name'], message: `scheduler ${raw._class_name} is not supported; supported: ${SCHEDULER_CLASSES.join(', ')}` });
  })
  .pipe(z.discriminatedUnion('_class_name', [eulerSchedulerConfigSchema, animateLcmSchedulerConfigSchema]));
export type SchedulerConfig = z.infer<typeof schedulerConfigSchema>;

export const featureExtractorSchema = z.object({
  image_mean: z.array(z.number()).length(3),
  image_std: z.array(z.number()).length(3),
});
export type FeatureExtractorConfig = z.infer<typeof featureExtractorSchema>;

/** Expands an int-or-list config value to one entry per level, checking the list length. */
export function perLevelValue(value: number | readonly number[], levels: number, key: string, file: string): number[] {
  if (typeof value === 'number') return Array.from({ length: levels }, () => value);
  if (value.length !== levels) throw new Error(`${file}: ${key} has ${value.length} entries but the model has ${levels} levels`);
  return [...value];
}
