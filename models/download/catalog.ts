// The models `npm run setup -- --model NAME` installs, by the name users type (setup and
// `generate --model NAME`).
import { existsSync } from 'node:fs';
import { modelDirFor } from '../paths.js';
import { ANIMATELCM_SVD_XT } from './animatelcm.js';
import { MODEL_REPOS } from './hub.js';

export const MODEL_NAMES = { ...MODEL_REPOS, 'animatelcm-svd-xt': ANIMATELCM_SVD_XT.repo } as const;
export type ModelName = keyof typeof MODEL_NAMES;

export const isModelName = (name: string): name is ModelName => Object.hasOwn(MODEL_NAMES, name);

/** `--model`'s value as a directory: a path as given, or where setup installs a model of that name (a path that exists wins). */
export function modelDirOf(value: string): string {
  return isModelName(value) && !existsSync(value) ? modelDirFor(MODEL_NAMES[value]) : value;
}
