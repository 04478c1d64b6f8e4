// Execution providers: which one to use, with the reasons the others were passed over.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { RandomWeights } from '../onnx/weights.js';

export const providers = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
export type ProviderChoice = (typeof providers)[number];
export type Provider = Exclude<ProviderChoice, 'auto'>;

export interface ProviderResolution {
  provider: Provider;
  /** Why each provider tried before it was not used. */
  skipped: { provider: Provider; reason: string }[];
}

let probeModel: string | undefined;
/** A one-node fp16 graph: enough to find out whether a provider starts on this machine. */
function probeModelPath(): string {
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

export function sessionOptions(provider: Provider): ort.InferenceSession.SessionOptions {
  // Shapes repeat exactly from step to step: exact-size buffer reuse ('simple') keeps WebGPU
  // memory flat, where the default size buckets grew until the card ran out (seen on an H100).
  const ep: ort.InferenceSession.ExecutionProviderConfig = provider === 'webgpu' ? { name: 'webgpu', storageBufferCacheMode: 'simple' } : provider;
  return {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
    logSeverityLevel: Number(process.env.SVD_ORT_LOG_LEVEL ?? 3) as 0 | 1 | 2 | 3 | 4,
  };
}

async function tryProvider(provider: Provider): Promise<string | undefined> {
  try {
    const s = await ort.InferenceSession.create(probeModelPath(), sessionOptions(provider));
    await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4]) });
    await s.release();
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
}

export async function resolveProvider(choice: ProviderChoice): Promise<ProviderResolution> {
  if (choice !== 'auto') {
    const reason = choice === 'cpu' ? undefined : await tryProvider(choice);
    if (reason) throw new Error(`provider ${choice} is not available here: ${reason}. Use --provider auto to fall back, or cpu.`);
    return { provider: choice, skipped: [] };
  }
  const skipped: ProviderResolution['skipped'] = [];
  for (const p of ['cuda', 'webgpu'] as const) {
    const reason = await tryProvider(p);
    if (!reason) return { provider: p, skipped };
    skipped.push({ provider: p, reason });
  }
  return { provider: 'cpu', skipped };
}
