// Which onnxruntime build a machine runs, decided from nvidia-smi alone (the driver and each card),
// so that setup knows what to install before any CUDA library is there, and setup, the launcher
// and `svd doctor` never disagree.
//
// onnxruntime publishes its CUDA provider for one CUDA major per release: CUDA 12 up to 1.26 (the
// NuGet package onnxruntime-node's installer fetches), CUDA 13 since 1.27. CUDA 13 needs driver
// 580.65.06 or newer and dropped Volta (no sm_70 code), so Colab's driver 550 (T4, L4, A100) and
// every V100 take the CUDA 12 build, installed beside the pinned one (package.json's
// onnxruntime-node-cuda12 alias) and loaded in its place by the launcher.
import type { GpuCard, GpuInventory } from './nvidia-smi.js';

export type CudaMajor = '12' | '13';

export interface CudaRuntime {
  /** The npm package (a directory in node_modules) whose onnxruntime-node is loaded. */
  packageName: string;
  /** NVIDIA's minimum Linux driver for this CUDA major (CUDA toolkit release notes, table 3). */
  minDriver: string;
  /** The oldest card its provider has code for. */
  minComputeCapability: string;
}

export const CUDA_RUNTIMES: Record<CudaMajor, CudaRuntime> = {
  '13': { packageName: 'onnxruntime-node', minDriver: '580.65.06', minComputeCapability: '7.5' },
  // onnxruntime's CUDA 12 builds carry code from sm_60 (Pascal) up.
  '12': { packageName: 'onnxruntime-node-cuda12', minDriver: '525.60.13', minComputeCapability: '6.0' },
};

/** The build every machine without a usable NVIDIA card runs (WebGPU and the CPU). */
export const DEFAULT_PACKAGE = CUDA_RUNTIMES['13'].packageName;

export interface RuntimeChoice {
  /** null: no CUDA build can run here (then WebGPU or the CPU). */
  cuda: CudaMajor | null;
  /** The package to load. */
  packageName: string;
  /** Why, one sentence each, in the order the rules were applied. */
  reasons: string[];
}

/** Compares dotted version numbers ("550.54.15" < "580.65.06"). */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

const sm = (cc: string) => `sm_${cc.replace('.', '')}`;
const cardName = (g: GpuCard) => `card ${g.index} (${g.name}${g.computeCapability ? `, ${sm(g.computeCapability)}` : ''})`;

export function chooseRuntime(inv: GpuInventory, platform = `${process.platform}/${process.arch}`): RuntimeChoice {
  const none = (reason: string): RuntimeChoice => ({ cuda: null, packageName: DEFAULT_PACKAGE, reasons: [reason] });
  if (platform !== 'linux/x64') return none(`onnxruntime-node has a CUDA provider for Linux x64 only (this is ${platform})`);
  if (!inv.driverPresent) {
    return none(!inv.error || inv.error.startsWith('nvidia-smi not found') ? 'no NVIDIA driver on this machine (no nvidia-smi)' : `the NVIDIA driver is not working: ${inv.error}`);
  }
  if (inv.gpus.length === 0) return none(`nvidia-smi lists no card${inv.error ? ` (${inv.error})` : ''}`);
  const driver = inv.driverVersion ?? inv.gpus[0]!.driverVersion;
  const runs = inv.cudaVersion ? ` (it runs CUDA ${inv.cudaVersion} at most)` : '';
  const cuda12 = CUDA_RUNTIMES['12'];
  const cuda13 = CUDA_RUNTIMES['13'];
  if (compareVersions(driver, cuda12.minDriver) < 0) {
    return none(`NVIDIA driver ${driver}${runs} is older than ${cuda12.minDriver}, which onnxruntime's oldest supported CUDA build (CUDA 12) needs: update the NVIDIA driver`);
  }
  const tooOld = inv.gpus.filter((g) => g.computeCapability && compareVersions(g.computeCapability, cuda12.minComputeCapability) < 0);
  if (tooOld.length) {
    return none(`${tooOld.map(cardName).join(' and ')}: onnxruntime's CUDA builds have no code for cards older than ${sm(cuda12.minComputeCapability)}`);
  }
  const reasons: string[] = [];
  const driverFor13 = compareVersions(driver, cuda13.minDriver) >= 0 && (!inv.cudaVersion || compareVersions(inv.cudaVersion, '13') >= 0);
  if (!driverFor13) reasons.push(`NVIDIA driver ${driver}${runs} is older than ${cuda13.minDriver}, which CUDA 13 needs`);
  const before13 = inv.gpus.filter((g) => !g.computeCapability || compareVersions(g.computeCapability, cuda13.minComputeCapability) < 0);
  for (const g of before13) {
    reasons.push(
      g.computeCapability ? `${cardName(g)} is older than ${sm(cuda13.minComputeCapability)}: CUDA 13 has no code for it` : `${cardName(g)}: the driver does not report its compute capability`,
    );
  }
  if (reasons.length === 0) {
    const ccs = [...new Set(inv.gpus.map((g) => `${g.name} ${sm(g.computeCapability!)}`))].join(', ');
    return { cuda: '13', packageName: cuda13.packageName, reasons: [`NVIDIA driver ${driver}${runs} runs CUDA 13 and every card has code in it (${ccs})`] };
  }
  return { cuda: '12', packageName: cuda12.packageName, reasons: [...reasons, 'so the CUDA 12 build (driver 525.60.13+, sm_60+) runs instead'] };
}
