// A frame interpolator on disk: RIFE 4.25's weights as `rife.safetensors` (converted once from
// the published flownet.pkl), built (in its video form) into an ONNX file in the same cache as
// the SVD networks, keyed by the weights file, the form and the graph code.
import { createHash } from 'node:crypto';
import { INSTALL_INTERPOLATOR_COMMAND } from '../common/video-chain.js';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultCacheDir, graphCodeHash, publishBuild } from './convert.js';
import { GraphBuilder, type SaveResult } from './onnx/graph-builder.js';
import { SafetensorsWeights, type WeightSource } from './onnx/weights.js';
import { buildRife, buildRifeVideo, rifeConfigOf } from './networks/rife.js';
import { writeSafetensorsStreamed } from './safetensors.js';
import { readTorchStateDict } from './torch-checkpoint.js';
import { DEMO_INTERPOLATOR, DEMO_MODEL, interpolatorDir } from './paths.js';

export const RIFE_WEIGHTS_FILE = 'rife.safetensors';

export class InterpolatorMissingError extends Error {
  constructor(dir: string) {
    super(`no frame interpolator in ${dir} (it needs ${RIFE_WEIGHTS_FILE}): install RIFE with ${INSTALL_INTERPOLATOR_COMMAND}`);
    this.name = 'InterpolatorMissingError';
  }
}

/**
 * Which interpolator a job on `modelDir` uses: the one asked for, else the installed RIFE, else
 * for the demo model the demo interpolator (both random weights); undefined when
 * there is none, and a job that asks for interpolation is refused with the install command.
 */
export function findInterpolator(modelDir: string, explicit?: string): string | undefined {
  if (explicit) return explicit;
  if (existsSync(join(interpolatorDir(), RIFE_WEIGHTS_FILE))) return interpolatorDir();
  return resolve(modelDir) === resolve(DEMO_MODEL) ? DEMO_INTERPOLATOR : undefined;
}

/** The weights file of the interpolator in `dir`, or InterpolatorMissingError. */
export function interpolatorWeights(dir: string): string {
  const path = join(dir, RIFE_WEIGHTS_FILE);
  if (!existsSync(path)) throw new InterpolatorMissingError(dir);
  return path;
}

/**
 * Writes `dir/rife.safetensors` from a Practical-RIFE checkpoint: the state dict's tensors under
 * their names without the "module." of its DataParallel training (as RIFE_HDv3.load_model keeps
 * only those), float32. Written beside and renamed, so a cut-off conversion leaves nothing.
 */
export function installRifeCheckpoint(pklPath: string, dir: string): { tensors: number; parameters: number } {
  const state = readTorchStateDict(pklPath);
  const kept = [...state].filter(([k]) => k.startsWith('module.')).map(([k, t]) => ({ name: k.slice('module.'.length), ...t }));
  if (!kept.some((t) => t.name === 'encode.cnn0.weight')) throw new Error(`${pklPath} is not a Practical-RIFE 4.x flow network (no module.encode.cnn0.weight)`);
  mkdirSync(dir, { recursive: true });
  const target = join(dir, RIFE_WEIGHTS_FILE);
  const tmp = `${target}.tmp-${process.pid}`;
  writeSafetensorsStreamed(
    tmp,
    kept.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, bytes: () => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
    { source: 'Practical-RIFE flownet.pkl', format: 'pt' },
  );
  renameSync(tmp, target);
  // The graph must build from what was written: a checkpoint of another 4.x layout fails here, at install.
  const weights = SafetensorsWeights.open(target);
  try {
    defineInterpolator(weights, 'video');
  } finally {
    weights.close();
  }
  return { tensors: kept.length, parameters: kept.reduce((s, t) => s + t.data.length, 0) };
}

/**
 * Which graph: 'tensors', the network alone as the reference runs it (RIFE_CONTRACT, held to its
 * golden tensors); 'video', the same network taking and giving frames as bytes (RIFE_VIDEO_CONTRACT,
 * what FrameInterpolator runs).
 */
export type InterpolatorForm = 'tensors' | 'video';

/** RIFE's graph over `weights` (always float32: the network is small and GridSample has no half form on the CPU). */
export function defineInterpolator(weights: WeightSource, form: InterpolatorForm = 'tensors'): GraphBuilder {
  const b = new GraphBuilder({ dtype: 'float32', attention: 'matmul', weights });
  (form === 'video' ? buildRifeVideo : buildRife)(b, rifeConfigOf(weights));
  return b;
}

export function buildInterpolatorFile(dir: string, outPath: string, form: InterpolatorForm = 'tensors'): SaveResult {
  const weights = SafetensorsWeights.open(interpolatorWeights(dir));
  try {
    return defineInterpolator(weights, form).save(outPath);
  } finally {
    weights.close();
  }
}

/** The interpolator's ONNX file in its video form, built on first use and cached like the SVD networks. */
export function convertInterpolator(dir: string, cacheDir = defaultCacheDir()): { path: string; built: boolean } {
  const weightsPath = interpolatorWeights(dir);
  const st = statSync(weightsPath);
  const key = createHash('sha256')
    .update(JSON.stringify({ network: 'rife', form: 'video', weights: resolve(weightsPath), size: st.size, mtime: st.mtimeMs, code: graphCodeHash() }))
    .digest('hex')
    .slice(0, 24);
  const out = join(cacheDir, `rife-video-${key}`);
  const path = join(out, 'rife.onnx');
  if (existsSync(path)) return { path, built: false };
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    buildInterpolatorFile(dir, join(tmp, 'rife.onnx'), 'video');
    publishBuild(tmp, out, path);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { path, built: true };
}
