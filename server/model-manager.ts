// The models this server can run (the one it was started with and every one `npm run setup`
// installed). Each worker process holds one loaded at a time: a job for another model releases the
// loaded one first.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { openModelDir } from '../models/model-dir.js';
import { findInterpolator } from '../models/interpolator.js';
import { MODELS_ROOT } from '../models/paths.js';
import { FrameInterpolator } from '../models/pipeline/interpolate.js';
import { SvdPipeline } from '../models/pipeline/pipeline.js';
import type { GpuMemoryMode, ProviderChoice } from '../models/runtime/runtime.js';
import { parseSettings } from '../common/settings.js';
import { INSTALL_INTERPOLATOR_COMMAND } from '../common/video-chain.js';

export interface ModelEntry {
  name: string;
  path: string;
  demo: boolean;
  /** The UNet's trained frame count (25 for SVD-XT, 14 for SVD). */
  frames: number;
  /** A consistency-distilled model (AnimateLCM's sampler): a few steps with guidance near 1. */
  fast: boolean;
  /** The frame interpolator its jobs use (models/interpolator.ts findInterpolator); absent: none installed. */
  interpolator?: string;
}

export function discoverModels(primary: { path: string; demo: boolean }, root = MODELS_ROOT): ModelEntry[] {
  const entry = (path: string, demo: boolean): ModelEntry => {
    const model = openModelDir(path);
    const fast = model.scheduler.config._class_name === 'AnimateLCMSVDStochasticIterativeScheduler';
    const interpolator = findInterpolator(path);
    return { name: demo ? 'demo' : basename(resolve(path)), path, demo, frames: model.unet.config.num_frames, fast, ...(interpolator ? { interpolator } : {}) };
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
  /** Opened on the first job that interpolates and kept, like the model's sessions. */
  private interpolatorOpen: { path: string; interpolator: Promise<FrameInterpolator> } | undefined;

  constructor(
    readonly models: Pick<ModelEntry, 'name' | 'path' | 'interpolator'>[],
    private readonly runtime: { provider: ProviderChoice; gpuMemory?: GpuMemoryMode; deviceId?: number },
    private readonly onLoad: (name: string, p: Promise<SvdPipeline>) => void,
    private readonly log: (line: string) => void,
  ) {}

  get activeName(): string | undefined {
    return this.loaded?.name;
  }

  find(name: string | undefined): Pick<ModelEntry, 'name' | 'path' | 'interpolator'> | undefined {
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

  /** The frame interpolator for jobs on model `name` running on `pipeline`'s provider. */
  async interpolator(name: string | undefined, pipeline: SvdPipeline): Promise<FrameInterpolator> {
    const path = this.find(name)?.interpolator;
    if (!path) throw new Error(`interpolation needs a frame interpolator on the server: install RIFE with ${INSTALL_INTERPOLATOR_COMMAND}`);
    if (this.interpolatorOpen?.path !== path) {
      const previous = this.interpolatorOpen;
      const interpolator = (async () => {
        await (await previous?.interpolator.catch(() => undefined))?.release();
        return FrameInterpolator.load(path, { provider: pipeline.provider, deviceId: this.runtime.deviceId });
      })();
      this.interpolatorOpen = { path, interpolator };
      // A failed load is tried again by the next job that asks.
      interpolator.catch(() => {
        if (this.interpolatorOpen?.interpolator === interpolator) this.interpolatorOpen = undefined;
      });
      return interpolator;
    }
    return this.interpolatorOpen.interpolator;
  }

  async release(): Promise<void> {
    await (await this.interpolatorOpen?.interpolator.catch(() => undefined))?.release();
    await (await this.loaded?.pipeline.catch(() => undefined))?.release();
  }
}
