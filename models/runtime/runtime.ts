// Execution providers: which one to use, with the reasons the others were passed over.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { PORTABLE_FORMS, type GraphForms } from '../networks/forms.js';
import { ALL_FUSIONS, fusionsFor, type GraphFusion, type RuntimeTarget } from '../networks/fusions.js';
import { checkCuda, checkWebgpu, childStarter, type GpuProvider, type ProviderCheck } from './provider-check.js';
import { RandomWeights } from '../onnx/weights.js';
import { nvidiaGpu } from './nvidia-smi.js';
import { packageVersion } from './onnxruntime-package.js';
import { USE_ENV_ALLOCATORS, usesSharedCudaArena } from './cuda-arena.js';

import { gpuMemoryModes, type GpuMemoryMode, type Provider, type ProviderChoice } from '../../common/runtime-choices.js';

export { gpuMemoryModes, providers, type GpuMemoryMode, type Provider, type ProviderChoice } from '../../common/runtime-choices.js';

export interface ProviderResolution {
  provider: Provider;
  /** Why each provider tried before it was not used; details for --verbose. */
  skipped: { provider: Provider; reason: string; details?: string }[];
}

let probeModel: string | undefined;
/** A one-node fp16 graph: enough to find out whether a provider starts on this machine. */
export function probeModelPath(): string {
  if (probeModel) return probeModel;
  const dir = mkdtempSync(join(tmpdir(), 'svd-probe-'));
  const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });
  const x = b.input('x', 'float32', [1, 4]);
  b.output(b.cast(b.add(b.cast(x, 'float16'), b.scalar(1)), 'float32'), 'y', [1, 4]);
  probeModel = join(dir, 'probe.onnx');
  b.save(probeModel);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return probeModel;
}

/**
 * The graph forms each provider runs best (see GraphForms). CUDA: the fused attention kernel for
 * the temporal layers too, no frame halves in the decoder (it has no 2 GiB limit), channels last,
 * and the fused operators `target` is known to run (fusions.ts FUSED_OPERATOR_SUPPORT; default:
 * the onnxruntime build this process loads, any card; where its version cannot be read, none).
 * SVD_GRAPH_FORMS="temporalAttention=matmul,decoderFrameHalves=1" overrides, for experiments.
 */
export function graphFormsFor(provider: Provider, target?: RuntimeTarget): GraphForms {
  const version = target?.onnxruntime ?? packageVersion();
  const fusions = version === undefined ? [] : fusionsFor({ ...target, provider, onnxruntime: version });
  const base: GraphForms = provider === 'cuda' ? { temporalAttention: 'mha', decoderFrameHalves: false, imageLayout: 'nhwc', fusions } : PORTABLE_FORMS;
  return parseGraphForms(process.env.SVD_GRAPH_FORMS ?? '', base);
}

export function parseGraphForms(text: string, base: GraphForms): GraphForms {
  const forms = { ...base };
  for (const pair of text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)) {
    const [key, value] = pair.split('=').map((t) => t.trim());
    if (key === 'temporalAttention' && (value === 'mha' || value === 'matmul')) forms.temporalAttention = value;
    else if (key === 'decoderFrameHalves' && (value === '0' || value === '1')) forms.decoderFrameHalves = value === '1';
    else if (key === 'imageLayout' && (value === 'nchw' || value === 'nhwc')) forms.imageLayout = value;
    else if (key === 'fusions' && value !== undefined && parseFusions(value)) forms.fusions = parseFusions(value)!;
    else throw new Error(`graph forms: "${pair}" is not temporalAttention=mha|matmul, decoderFrameHalves=0|1, imageLayout=nchw|nhwc or fusions=none|all|<${ALL_FUSIONS.join('|')}>+…`);
  }
  return forms;
}

/** `none`, `all`, or fusion names joined by `+`; undefined for anything else. */
function parseFusions(text: string): GraphFusion[] | undefined {
  if (text === 'none') return [];
  if (text === 'all') return [...ALL_FUSIONS];
  const names = text.split('+');
  return names.every((n): n is GraphFusion => (ALL_FUSIONS as readonly string[]).includes(n)) ? names : undefined;
}

export const webgpuBufferCacheModes = ['disabled', 'lazyRelease', 'simple', 'bucket'] as const;
export type WebGpuBufferCacheMode = (typeof webgpuBufferCacheModes)[number];

/**
 * How the WebGPU provider trades speed for GPU memory (the times and sizes of each: BENCHMARKS.md,
 * "Full-size SVD-XT on the H100 through WebGPU"):
 * - 'fast': exact-size buffer reuse ('simple' cache), the faster one, but cached buffers of every
 *   size stay on the device, so the pipeline opens each stage's networks alone and closes them
 *   after (the cache dies with the last session).
 * - 'lean': no cache, buffers go back to the driver as soon as they are dead, and the guidance
 *   batch runs one video at a time: a fraction of the memory, about half the speed.
 */

export function bufferCacheFor(mode: Exclude<GpuMemoryMode, 'auto'>): WebGpuBufferCacheMode {
  return mode === 'fast' ? 'simple' : 'disabled';
}

/** An environment variable that must be one of `allowed` when set (empty counts as unset). */
export function envChoice<T extends string>(name: string, allowed: readonly T[]): T | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`${name}=${value} is not one of ${allowed.join(', ')}`);
  return value as T;
}

/**
 * 'auto' (or SVD_GPU_MEMORY, for the server) becomes 'fast' where the card has room for it
 * (48 GiB or more, per nvidia-smi), else 'lean'.
 */
export async function resolveGpuMemoryMode(requested: GpuMemoryMode): Promise<Exclude<GpuMemoryMode, 'auto'>> {
  const mode = requested === 'auto' ? (envChoice('SVD_GPU_MEMORY', gpuMemoryModes) ?? 'auto') : requested;
  if (mode !== 'auto') return mode;
  const gpu = await nvidiaGpu(10_000);
  return gpu && gpu.memoryTotalMiB >= 48 * 1024 ? 'fast' : 'lean';
}

/** SVD_WEBGPU_BUFFER_CACHE overrides the cache mode, for experiments. */
function webgpuBufferCache(fallback: WebGpuBufferCacheMode): WebGpuBufferCacheMode {
  return envChoice('SVD_WEBGPU_BUFFER_CACHE', webgpuBufferCacheModes) ?? fallback;
}

/**
 * Further WebGPU provider settings for experiments, from SVD_WEBGPU_OPTIONS="key=value,…":
 * the keys onnxruntime-node's WebGPU options know (preferredLayout, validationMode) go there,
 * the others (e.g. maxNumPendingDispatches) become session config entries.
 */
function webgpuExperimentOptions(): { ep: Record<string, string>; extra?: Record<string, string> } {
  const env = process.env.SVD_WEBGPU_OPTIONS;
  const ep: Record<string, string> = {};
  if (!env) return { ep };
  const extra: Record<string, string> = {};
  for (const pair of env.split(',')) {
    const [key, value] = pair.split('=').map((t) => t.trim());
    if (!key || value === undefined) throw new Error(`SVD_WEBGPU_OPTIONS: "${pair}" is not key=value`);
    if (key === 'preferredLayout' || key === 'validationMode') ep[key] = value;
    else extra[`ep.webgpuexecutionprovider.${key}`] = value;
  }
  return { ep, extra: Object.keys(extra).length ? extra : undefined };
}

export function sessionOptions(provider: Provider, opts: { webgpuCache?: WebGpuBufferCacheMode; deviceId?: number } = {}): ort.InferenceSession.SessionOptions {
  // CUDA sessions take the card's shared arena where one was registered (cuda-arena.ts).
  const arena = provider === 'cuda' && usesSharedCudaArena(opts.deviceId ?? 0) ? USE_ENV_ALLOCATORS : undefined;
  // Shapes repeat exactly from step to step: exact-size buffer reuse ('simple') keeps WebGPU
  // memory flat, where the default size buckets grew until the card ran out (seen on an H100).
  const experiment = provider === 'webgpu' ? webgpuExperimentOptions() : { ep: {} };
  const ep: ort.InferenceSession.ExecutionProviderConfig =
    provider === 'webgpu'
      ? { name: 'webgpu', storageBufferCacheMode: webgpuBufferCache(opts.webgpuCache ?? 'simple'), ...experiment.ep }
      : provider === 'cuda' && opts.deviceId !== undefined
        ? { name: 'cuda', deviceId: opts.deviceId }
        : provider;
  const extra = experiment.extra || arena ? { ...experiment.extra, ...arena } : undefined;
  return {
    executionProviders: [ep],
    ...(extra ? { extra } : {}),
    graphOptimizationLevel: 'all',
    logSeverityLevel: Number(process.env.SVD_ORT_LOG_LEVEL ?? 3) as 0 | 1 | 2 | 3 | 4,
  };
}

const PROVIDER_LABEL: Record<Provider, string> = { cuda: 'CUDA', webgpu: 'WebGPU', cpu: 'CPU' };

/** Checks a GPU provider (see provider-check.ts); tests pass their own. */
export type ProviderChecker = (provider: GpuProvider) => Promise<ProviderCheck>;

const checks = new Map<GpuProvider, Promise<ProviderCheck>>();
/** Each provider is checked once per process: the answer does not change while it runs, and each check starts a child process. */
export const checkProvider: ProviderChecker = (provider) => {
  let check = checks.get(provider);
  if (!check) {
    const start = childStarter(probeModelPath, (p) => sessionOptions(p));
    check = provider === 'cuda' ? checkCuda(start) : checkWebgpu(start);
    checks.set(provider, check);
  }
  return check;
};

export async function resolveProvider(choice: ProviderChoice, check: ProviderChecker = checkProvider): Promise<ProviderResolution> {
  if (choice !== 'auto') {
    const result = choice === 'cpu' ? { ok: true } : await check(choice);
    if (!result.ok) throw new Error(`provider ${choice} is not available here: ${result.reason}. Use --provider auto to fall back, or cpu.`);
    return { provider: choice, skipped: [] };
  }
  const skipped: ProviderResolution['skipped'] = [];
  for (const p of ['cuda', 'webgpu'] as const) {
    const result = await check(p);
    if (result.ok) return { provider: p, skipped };
    skipped.push({ provider: p, reason: result.reason ?? 'unavailable', details: result.details });
  }
  return { provider: 'cpu', skipped };
}

/** One line: the provider used and, in brackets, why each one before it was not. */
export function describeResolution(r: ProviderResolution): string {
  const why = r.skipped.map((s) => `${PROVIDER_LABEL[s.provider]}: ${s.reason}`);
  return `using provider ${r.provider}${why.length ? ` (${why.join('; ')})` : ''}`;
}

/** What each GPU provider's check found, for --verbose. */
export async function providerReport(check: ProviderChecker = checkProvider): Promise<string> {
  const parts: string[] = [];
  for (const p of ['cuda', 'webgpu'] as const) {
    const result = await check(p);
    const head = `${PROVIDER_LABEL[p]}: ${result.ok ? 'available' : result.reason}`;
    parts.push(
      [
        head,
        ...(result.details ?? '')
          .split('\n')
          .filter(Boolean)
          .map((l) => `  ${l}`),
      ].join('\n'),
    );
  }
  return parts.join('\n');
}
