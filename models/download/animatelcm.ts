// AnimateLCM-SVD-xt as a diffusers SVD directory. The hub repository wangfuyun/AnimateLCM-SVD-xt
// holds only the distilled UNet, one state dict in diffusers' key names at its root (the
// reference app loads it with `pipe.unet.load_state_dict(..., strict=True)` into SVD-XT's
// pipeline: G-U-N/AnimateLCM animatelcm_svd/app.py), so the directory is SVD-XT's other parts,
// that file as unet/diffusion_pytorch_model.safetensors (fp32, the checkpoint as published), and
// the reference app's sampler as scheduler/scheduler_config.json.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WEIGHT_FILES } from '../model-dir.js';
import { ANIMATELCM_SVD_XT_SCHEDULER } from '../reference-configs.js';
import { SafetensorsFile } from '../safetensors.js';
import { type DownloadOptions, downloadFiles, HubError, type HubFile, listRepoFiles, MODEL_REPOS, selectSvdFiles } from './hub.js';

export const ANIMATELCM_SVD_XT: AnimateLcmSource = {
  base: MODEL_REPOS['svd-xt'],
  repo: 'wangfuyun/AnimateLCM-SVD-xt',
  /** The reference app's default (1.1); the repository also has the first release. */
  file: 'AnimateLCM-SVD-xt-1.1.safetensors',
  /** From the LFS pointer in G-U-N/AnimateLCM (animatelcm_svd/safetensors/), checked against the hub's listing. */
  sha256: '94b2da1fcca8d03458ef0b07b94b4c55f94117cb0d90265c6c8452239ecc166e',
  size: 6098682464,
};

/** SVD-XT's pipeline with the reference code's sampler (animatelcm_svd/animatelcm_scheduler.py). */
const ANIMATELCM_MODEL_INDEX = {
  _class_name: 'StableVideoDiffusionPipeline',
  feature_extractor: ['transformers', 'CLIPImageProcessor'],
  image_encoder: ['transformers', 'CLIPVisionModelWithProjection'],
  scheduler: ['animatelcm_scheduler', ANIMATELCM_SVD_XT_SCHEDULER._class_name],
  unet: ['diffusers', 'UNetSpatioTemporalConditionModel'],
  vae: ['diffusers', 'AutoencoderKLTemporalDecoder'],
};

/** Where the distilled UNet goes in the assembled directory. */
export const ANIMATELCM_UNET_PATH = 'unet/diffusion_pytorch_model.safetensors';

/** Where AnimateLCM's parts come from (other values only in tests). */
export interface AnimateLcmSource {
  base: string;
  repo: string;
  file: string;
  sha256: string;
  size: number;
}

/** Downloads (or verifies) SVD-XT's parts but its UNet weights, and the distilled UNet, then assembles the directory. */
export async function downloadAnimateLcm(opts: Omit<DownloadOptions, 'repo'>, source: AnimateLcmSource = ANIMATELCM_SVD_XT): Promise<void> {
  const base = { ...opts, repo: source.base };
  // Not SVD-XT's UNet weights, nor the two files assembleAnimateLcm writes (a second run would fetch them again).
  const ours = new Set(['model_index.json', 'scheduler/scheduler_config.json']);
  const baseFiles = selectSvdFiles(await listRepoFiles(base)).filter((f) => !(f.path.startsWith('unet/') && f.path.endsWith('.safetensors')) && !ours.has(f.path));
  await downloadFiles(base, baseFiles);
  const lcm = { ...opts, repo: source.repo };
  const listed = (await listRepoFiles(lcm)).find((f) => f.path === source.file);
  if (!listed) throw new HubError(`${source.repo} has no ${source.file} any more; report this`);
  if (listed.sha256 && listed.sha256 !== source.sha256)
    throw new HubError(`${source.repo}/${source.file} changed on the hub (sha256 ${listed.sha256}, expected ${source.sha256}); report this before using it`);
  const unet: HubFile = { ...listed, sha256: source.sha256, size: source.size, saveAs: ANIMATELCM_UNET_PATH };
  await downloadFiles(lcm, [unet]);
  assembleAnimateLcm(opts.dest);
}

/**
 * Turns a directory holding SVD-XT's parts and the distilled UNet at unet/diffusion_pytorch_model.safetensors
 * into AnimateLCM's: checks the UNet file is a diffusers UNet state dict matching unet/config.json,
 * that no other UNet weights would be picked before it, and writes the sampler's config.
 */
export function assembleAnimateLcm(dir: string): void {
  const unetPath = join(dir, ANIMATELCM_UNET_PATH);
  const other = WEIGHT_FILES.unet.map((f) => join(dir, 'unet', f)).find((p) => p !== unetPath && existsSync(p));
  if (other) throw new HubError(`${other} would be used instead of AnimateLCM's UNet: remove it (it is SVD-XT's own) and run setup again`);
  checkUnetCheckpoint(unetPath, JSON.parse(readFileSync(join(dir, 'unet', 'config.json'), 'utf8')) as { block_out_channels: number[]; in_channels: number });
  mkdirSync(join(dir, 'scheduler'), { recursive: true });
  writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), `${JSON.stringify(ANIMATELCM_SVD_XT_SCHEDULER, null, 2)}\n`);
  writeFileSync(join(dir, 'model_index.json'), `${JSON.stringify(ANIMATELCM_MODEL_INDEX, null, 2)}\n`);
}

/** The state dict's layout: diffusers' UNetSpatioTemporalConditionModel names, shapes as the config says. */
export function checkUnetCheckpoint(path: string, config: { block_out_channels: number[]; in_channels: number }): void {
  if (!existsSync(path)) throw new HubError(`${path} is missing: run setup again to fetch AnimateLCM's UNet`);
  const file = SafetensorsFile.open(path);
  try {
    const convIn = file.tensors.get('conv_in.weight');
    if (!convIn) {
      const names = [...file.tensors.keys()];
      const prefixed = names.find((n) => n.endsWith('.conv_in.weight'));
      const hint = prefixed ? `its names carry a prefix ("${prefixed.slice(0, -'conv_in.weight'.length)}"), ` : '';
      throw new HubError(`${path} is not a diffusers UNet state dict: ${hint}no tensor "conv_in.weight" among its ${names.length}`);
    }
    const want = [config.block_out_channels[0], config.in_channels];
    if (convIn.shape[0] !== want[0] || convIn.shape[1] !== want[1])
      throw new HubError(`${path} does not fit unet/config.json: conv_in.weight is [${convIn.shape.join(', ')}], the config asks for [${want.join(', ')}, …]`);
  } finally {
    file.close();
  }
}
