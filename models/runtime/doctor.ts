// What this machine is and what svd-studio will run on it: the cards, the driver, the onnxruntime
// build chosen and why, the CUDA libraries found and missing, and what to do. `svd doctor`,
// `setup.sh --gpu` and the launcher all decide through `chooseRuntime` on one nvidia-smi reading,
// so they never disagree.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { discoverCuda, missingLibraries, searchOptionsFromEnv, type CudaDiscovery } from './cuda-libraries.js';
import { queryGpus, type GpuCard, type GpuInventory } from './nvidia-smi.js';
import { hasCudaProvider, ONNXRUNTIME_PACKAGE_ENV, packageVersion, PROVIDER_FILE, SHARED_PROVIDER_FILE } from './onnxruntime-package.js';
import { webgpuBlockedReason } from './provider-check.js';
import { chooseRuntime, compareVersions, type CudaMajor, type RuntimeChoice } from './runtime-choice.js';

export interface DoctorRuntime {
  provider: 'cuda' | 'webgpu' | 'cpu';
  cuda: CudaMajor | null;
  /** The onnxruntime version that will be loaded. */
  onnxruntime: string;
  /** Its npm package (node_modules/<package>). */
  package: string;
}

export interface DoctorCard extends GpuCard {
  /** What this card means for a job, in words. */
  notes: string[];
}

export interface DoctorReport {
  platform: string;
  driver: { present: boolean; version?: string; cudaVersion?: string; error?: string };
  gpus: DoctorCard[];
  runtime: DoctorRuntime;
  /** Why this runtime, one sentence each. */
  why: string[];
  /** CUDA only: whether the provider and every library it needs are in place. */
  cuda?: { providerInstalled: boolean; providerBuiltFor?: number; libraries: { soname: string; path?: string }[]; missing: string[] };
  /** The chosen provider can run now, without any of `todo`. */
  ready: boolean;
  /** What to do, each with the exact command. */
  todo: string[];
}

/** Cards below this much memory get the stage-by-stage plan (models/plan/gpu-memory.ts): the 16 GB class. */
const SMALL_CARD_MIB = 20 * 1024;

function cardNotes(g: GpuCard): string[] {
  const notes: string[] = [];
  const cc = g.computeCapability;
  notes.push(cc && compareVersions(cc, '8.0') >= 0 ? 'fp16; flash attention' : 'fp16 (no bf16 before sm_80); no flash attention: onnxruntime uses its memory-efficient attention');
  if (g.memoryTotalMiB < SMALL_CARD_MIB) {
    notes.push('a 16 GB-class card: each job opens one stage at a time and lowers the decode chunk to fit (SVD-XT 25 frames measured within 14.5 GiB without flash attention; BENCHMARKS.md)');
  }
  return notes;
}

function installedProvider(choice: RuntimeChoice, env: NodeJS.ProcessEnv, platform: string): boolean {
  const dir = env.SVD_ORT_PROVIDER_DIR;
  if (dir) return existsSync(join(dir, PROVIDER_FILE)) && existsSync(join(dir, SHARED_PROVIDER_FILE));
  return hasCudaProvider(choice.packageName, platform);
}

/** Reads the machine (nvidia-smi, library directories; no CUDA library is loaded) and decides. */
export function examineMachine(env: NodeJS.ProcessEnv = process.env, platform = `${process.platform}/${process.arch}`): DoctorReport {
  const inv: GpuInventory = queryGpus(env);
  const choice = chooseRuntime(inv, platform);
  const driver = {
    present: inv.driverPresent,
    ...(inv.driverVersion ? { version: inv.driverVersion } : {}),
    ...(inv.cudaVersion ? { cudaVersion: inv.cudaVersion } : {}),
    ...(inv.error ? { error: inv.error } : {}),
  };
  const gpus = inv.gpus.map((g) => ({ ...g, notes: cardNotes(g) }));
  const version = packageVersion(choice.packageName);
  const todo: string[] = [];
  if (!version) todo.push(`install svd-studio's packages: bash scripts/setup.sh${choice.cuda ? ' --gpu' : ''}`);
  const runtime = (provider: DoctorRuntime['provider']): DoctorRuntime => ({ provider, cuda: choice.cuda, onnxruntime: version ?? 'not installed', package: choice.packageName });

  if (!choice.cuda) {
    const webgpu = webgpuBlockedReason(env);
    const why = [...choice.reasons, webgpu ? `WebGPU: ${webgpu}; so the CPU (hours per video at full size)` : 'WebGPU: a Vulkan driver is installed, so WebGPU is tried first, then the CPU'];
    return { platform, driver, gpus, runtime: runtime(webgpu ? 'cpu' : 'webgpu'), why, ready: todo.length === 0, todo };
  }

  const providerInstalled = installedProvider(choice, env, platform);
  const search = searchOptionsFromEnv({ ...env, [ONNXRUNTIME_PACKAGE_ENV]: choice.packageName });
  const found: CudaDiscovery = discoverCuda({ ...search, platform }, { driver: inv, expect: choice.cuda });
  const missing = found.libraries.filter((l) => !l.path).map((l) => l.soname);
  if (!providerInstalled) {
    todo.push(`fetch onnxruntime ${version ?? ''}'s CUDA ${choice.cuda} provider: bash scripts/setup.sh --gpu`.replace('  ', ' '));
  } else if (found.provider?.cudaMajor !== undefined && String(found.provider.cudaMajor) !== choice.cuda) {
    todo.push(`the CUDA provider in node_modules/${choice.packageName} is built for CUDA ${found.provider.cudaMajor}, this machine needs CUDA ${choice.cuda}'s: bash scripts/setup.sh --gpu`);
  }
  todo.push(...missingLibraries(found.libraries, Number(found.provider?.cudaMajor ?? choice.cuda)));
  return {
    platform,
    driver,
    gpus,
    runtime: runtime('cuda'),
    why: choice.reasons,
    cuda: {
      providerInstalled,
      ...(found.provider?.cudaMajor !== undefined ? { providerBuiltFor: found.provider.cudaMajor } : {}),
      libraries: found.libraries.map((l) => ({ soname: l.soname, ...(l.path ? { path: l.path } : {}) })),
      missing,
    },
    ready: todo.length === 0,
    todo,
  };
}

const gib = (mib: number) => `${(mib / 1024).toFixed(1)} GiB`;

/** The report as a person reads it. */
export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(
    r.driver.present
      ? `NVIDIA driver ${r.driver.version ?? '(version unknown)'}${r.driver.cudaVersion ? `, runs CUDA ${r.driver.cudaVersion} at most` : ''}`
      : `NVIDIA driver: none${r.driver.error ? ` (${r.driver.error})` : ''}`,
  );
  for (const g of r.gpus) {
    lines.push(
      `  card ${g.index}: ${g.name}, ${g.computeCapability ? `sm_${g.computeCapability.replace('.', '')}` : 'compute capability unknown'}, ${gib(g.memoryTotalMiB)} (${gib(g.memoryFreeMiB)} free)`,
    );
    for (const n of g.notes) lines.push(`    ${n}`);
  }
  const rt = r.runtime;
  lines.push(`runtime: ${rt.provider === 'cuda' ? `CUDA ${rt.cuda}` : rt.provider === 'webgpu' ? 'WebGPU' : 'CPU'} with onnxruntime ${rt.onnxruntime} (node_modules/${rt.package})`);
  for (const w of r.why) lines.push(`  because ${w}`);
  if (r.cuda) {
    lines.push(`CUDA provider: ${r.cuda.providerInstalled ? `installed${r.cuda.providerBuiltFor ? `, built for CUDA ${r.cuda.providerBuiltFor}` : ''}` : 'not installed yet'}`);
    for (const l of r.cuda.libraries) lines.push(`  ${l.soname.padEnd(20)} ${l.path ?? 'NOT FOUND'}`);
  }
  if (r.todo.length) {
    lines.push('to do:');
    for (const t of r.todo) lines.push(`  - ${t}`);
  } else {
    lines.push(rt.provider === 'cuda' ? 'ready: npm start and npm run svd will use CUDA' : `ready: npm start and npm run svd will use ${rt.provider === 'webgpu' ? 'WebGPU' : 'the CPU'}`);
  }
  return lines.join('\n');
}
