// The models this server can run (the one it was started with and every one `npm run setup`
// installed). Each worker process holds one loaded at a time: a job for another model releases the
// loaded one first.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { openModelDir } from '../models/model-dir.js';
import { MODELS_ROOT } from '../models/paths.js';
import { SvdPipeline } from '../models/pipeline/pipeline.js';
import type { GpuMemoryMode, ProviderChoice } from '../models/runtime/runtime.js';
import { parseSettings } from '../common/settings.js';

export interface ModelEntry {
  name: string;
  path: string;
  demo: boolean;
  /** The UNet's trained frame count (25 for SVD-XT, 14 for SVD). */
  frames: number;
  /** A consistency-distilled model (AnimateLCM's sampler): a few steps with guidance near 1. */
  fast: boolean;
}

export function discoverModels(primary: { path: string; demo: boolean }, root = MODELS_ROOT): ModelEntry[] {
  const entry = (path: string, demo: boolean): ModelEntry => {
    const model = openModelDir(path);
    const fast = model.scheduler.config._class_name === 'AnimateLCMSVDStochasticIterativeScheduler';
    return { name: demo ? 'demo' : basename(resolve(path)), path, demo, frames: model.unet.config.num_frames, fast };
  };
  const out = [entry(primary.path, primary.demo)];
  if (existsSync(root)) {
    for (const d of readdirSync(root)) {
      const path = join(root, d);
      if (resolve(path) === resolve(primary.path) || !existsSync(join(path, 'model_index.json'))) continue;
      try {
        out.push(entry(path, false));
      } catch {
        // an incomplete download: `npm run setup` will finish it
      }
    }
  }
  return out;
}

export class ModelManager {
  private loaded: { name: string; pipeline: Promise<SvdPipeline> } | undefined;
  private switching: Promise<unknown> = Promise.resolve();

  constructor(
    readonly models: Pick<ModelEntry, 'name' | 'path'>[],
    private readonly runtime: { provider: ProviderChoice; gpuMemory?: GpuMemoryMode; deviceId?: number },
    private readonly onLoad: (name: string, p: Promise<SvdPipeline>) => void,
    private readonly log: (line: string) => void,
  ) {}

  get activeName(): string | undefined {
    return this.loaded?.name;
  }

  find(name: string | undefined): Pick<ModelEntry, 'name' | 'path'> | undefined {
    return name === undefined ? this.models[0] : this.models.find((m) => m.name === name);
  }

  /** The pipeline for `name` (the first model when undefined), loading it if another is loaded. */
  get(name?: string): Promise<SvdPipeline> {
    const model = this.find(name);
    if (!model) return Promise.reject(new Error(`model "${name}" is not installed here; installed: ${this.models.map((m) => m.name).join(', ')}`));
    if (this.loaded?.name === model.name) return this.loaded.pipeline;
    const previous = this.loaded;
    const pipeline = (this.switching = this.switching.then(async () => {
      if (previous) await (await previous.pipeline.catch(() => undefined))?.release();
      const p = await SvdPipeline.load(model.path, { ...this.runtime, onProgress: (e) => e.stage === 'loading' && this.log(e.message) });
      await this.warmUp(p);
      return p;
    })) as Promise<SvdPipeline>;
    this.loaded = { name: model.name, pipeline };
    this.onLoad(model.name, pipeline);
    pipeline.catch(() => {});
    return pipeline;
  }

  /**
   * On a GPU the first job at new shapes pays for cuDNN's algorithm search and the arena's growth
   * (CUDA: seconds on the first UNet step and per new decoder shape, BENCHMARKS.md): one step at the default
   * settings moves that out of the first job. A failure here only costs the first job that time.
   */
  private async warmUp(p: SvdPipeline): Promise<void> {
    const settings = parseSettings({ frames: p.defaultFrames });
    try {
      const ms = await p.warmUp(settings);
      if (ms !== undefined) this.log(`warmed up (one step at ${settings.width}x${settings.height} x ${p.defaultFrames} frames) in ${(ms / 1000).toFixed(1)} s`);
    } catch (err) {
      this.log(`warm-up skipped: ${(err as Error).message}`);
    }
  }

  async release(): Promise<void> {
    await (await this.loaded?.pipeline.catch(() => undefined))?.release();
  }
}
