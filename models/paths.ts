import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the setup step downloads the weights, unless SVD_MODEL_DIR says otherwise. */
export function defaultModelDir(): string {
  return process.env.SVD_MODEL_DIR ?? join(homedir(), '.cache', 'svd-studio', 'models', 'stable-video-diffusion-img2vid-xt');
}
