// Reads a diffusers-layout SVD repository: model_index.json, each component's config.json, and
// which weights file to use (the fp16 variant when present, else the plain file).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import {
  clipVisionConfigSchema,
  featureExtractorSchema,
  schedulerConfigSchema,
  unetConfigSchema,
  vaeConfigSchema,
  type ClipVisionConfig,
  type FeatureExtractorConfig,
  type SchedulerConfig,
  type UNetConfig,
  type VaeConfig,
} from './configs.js';

export class ModelDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelDirError';
  }
}

export interface Component<C> {
  readonly dir: string;
  readonly configPath: string;
  readonly config: C;
  /** Raw text of config.json, for cache keys. */
  readonly configText: string;
  readonly weightsPath: string;
}

export interface SvdModelDir {
  readonly root: string;
  readonly unet: Component<UNetConfig>;
  readonly vae: Component<VaeConfig>;
  readonly imageEncoder: Component<ClipVisionConfig>;
  readonly scheduler: { readonly configPath: string; readonly config: SchedulerConfig };
  readonly featureExtractor: { readonly configPath: string; readonly config: FeatureExtractorConfig };
}

export const WEIGHT_FILES = {
  unet: ['diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.safetensors'],
  vae: ['diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.safetensors'],
  image_encoder: ['model.fp16.safetensors', 'model.safetensors'],
} as const;

export function readConfig<S extends z.ZodType>(path: string, schema: S): { config: z.infer<S>; text: string } {
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelDirError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path.join('.');
      const missing = issue.code === 'invalid_type' && key && raw && typeof raw === 'object' && !(String(issue.path[0]) in raw);
      return missing ? `missing key "${key}"` : `"${key}": ${issue.message}`;
    });
    throw new ModelDirError(`${path}: ${problems.join('; ')}`);
  }
  return { config: parsed.data, text };
}

/** Validates the whole directory, reporting every missing file at once. */
export function openModelDir(root: string): SvdModelDir {
  if (!existsSync(root))
    throw new ModelDirError(`model directory ${root} does not exist; install it first with npm run setup -- --model svd-xt (or --model svd), or pass --model a diffusers SVD repository`);
  const missing: string[] = [];
  const need = (rel: string) => {
    const p = join(root, rel);
    if (!existsSync(p)) missing.push(rel);
    return p;
  };
  need('model_index.json');
  const configs = {
    unet: need('unet/config.json'),
    vae: need('vae/config.json'),
    image_encoder: need('image_encoder/config.json'),
    scheduler: need('scheduler/scheduler_config.json'),
    feature_extractor: need('feature_extractor/preprocessor_config.json'),
  };
  const weights = {} as Record<keyof typeof WEIGHT_FILES, string>;
  for (const [component, candidates] of Object.entries(WEIGHT_FILES) as [keyof typeof WEIGHT_FILES, readonly string[]][]) {
    const found = candidates.map((f) => join(root, component, f)).find((p) => existsSync(p));
    if (found) weights[component] = found;
    else missing.push(`${component}/${candidates.join(' or ')}`);
  }
  if (missing.length > 0) {
    throw new ModelDirError(`model directory ${root} is incomplete; missing: ${missing.join(', ')}. Re-run the download or point --model at a complete diffusers SVD repository.`);
  }
  const component = <C>(name: keyof typeof WEIGHT_FILES, schema: z.ZodType<C>): Component<C> => {
    const { config, text } = readConfig(configs[name], schema);
    return { dir: join(root, name), configPath: configs[name], config: config as C, configText: text, weightsPath: weights[name] };
  };
  return {
    root,
    unet: component('unet', unetConfigSchema),
    vae: component('vae', vaeConfigSchema),
    imageEncoder: component('image_encoder', clipVisionConfigSchema),
    scheduler: { configPath: configs.scheduler, config: readConfig(configs.scheduler, schedulerConfigSchema).config },
    featureExtractor: { configPath: configs.feature_extractor, config: readConfig(configs.feature_extractor, featureExtractorSchema).config },
  };
}
