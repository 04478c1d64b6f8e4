import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder holding package.json: found by walking up from this module, so it is the same
 * whether the code runs from its sources (models/paths.ts) or compiled (dist/models/paths.js).
 * Everything the project ships beside its code (demo/, client/dist/, data/) is found from here.
 */
export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));

function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json in ${from} or any folder above it: run svd-studio from its own folder (git clone, then bash scripts/setup.sh)`);
  }
}

/**
 * The tiny random-weight model the product ships (a real SVD layout with small configs): the
 * server runs it until a real model is installed, the README's first command uses it, and the
 * tests hold it to the reference tensors. `input.png` beside it is its demo picture.
 */
export const DEMO_DIR = join(PROJECT_ROOT, 'demo', 'svd-tiny');
export const DEMO_MODEL = join(DEMO_DIR, 'model');
export const DEMO_IMAGE = join(DEMO_DIR, 'input.png');
/**
 * The same with AnimateLCM's sampler (4 steps): svd-tiny's parts and random UNet, assembled as
 * `npm run setup -- --model animatelcm-svd-xt` assembles the real one (models/download/animatelcm.ts).
 */
export const DEMO_ANIMATELCM_MODEL = join(PROJECT_ROOT, 'demo', 'animatelcm-tiny', 'model');

/**
 * The tiny random-weight frame interpolator (RIFE 4.25's layout at small widths, the weights of
 * test/fixtures/rife-tiny): what the demo model interpolates with, so the demo and the tests run
 * the whole chain without a download.
 */
export const DEMO_INTERPOLATOR = join(PROJECT_ROOT, 'demo', 'rife-tiny');

export const MODELS_ROOT = join(homedir(), '.cache', 'svd-studio', 'models');

/** Where `npm run setup -- --interpolator rife` puts RIFE (or $SVD_INTERPOLATOR_DIR). */
export function interpolatorDir(): string {
  return process.env.SVD_INTERPOLATOR_DIR ?? join(homedir(), '.cache', 'svd-studio', 'interpolators', 'rife');
}

/** Where `npm run setup` puts a repository: ~/.cache/svd-studio/models/<repository name>. */
export function modelDirFor(repo: string): string {
  return join(MODELS_ROOT, repo.split('/').pop()!);
}

/** $SVD_MODEL_DIR, else the installed SVD-XT, else the installed SVD, else where SVD-XT would go. */
export function defaultModelDir(): string {
  if (process.env.SVD_MODEL_DIR) return process.env.SVD_MODEL_DIR;
  const candidates = ['stable-video-diffusion-img2vid-xt', 'stable-video-diffusion-img2vid'].map((n) => join(MODELS_ROOT, n));
  return candidates.find((d) => existsSync(join(d, 'model_index.json'))) ?? candidates[0]!;
}
