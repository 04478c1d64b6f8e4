import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const MODELS_ROOT = join(homedir(), '.cache', 'svd-studio', 'models');

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
