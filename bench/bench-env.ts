// One line naming the machine, provider, versions and date, printed by every benchmark.
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { createInterface } from 'node:readline';
import { NVIDIA_SMI_QUERY, parseNvidiaSmiLine } from '../models/runtime/nvidia-smi.js';
import { activeOnnxruntimePackage, packageVersion } from '../models/runtime/onnxruntime-package.js';

export function machineLine(provider: string): string {
  const ortVersion = `${packageVersion() ?? 'unknown'}${activeOnnxruntimePackage() === 'onnxruntime-node' ? '' : ` (${activeOnnxruntimePackage()})`}`;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `# ${new Date().toISOString()} | provider ${provider} | onnxruntime-node ${ortVersion} | node ${process.version} | ${cpus().length} × ${cpu} | ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM${process.env.GPU_NAME ? ` | ${process.env.GPU_NAME}` : ''}`;
}

/**
 * Samples nvidia-smi (where present) while a benchmark runs: the card's name and peak memory
 * used. `peakMiB` is the whole card; `ownPeakMiB` subtracts what was in use at the first sample
 * (another process holding memory to simulate a smaller card, say), so it is this process's own.
 * One nvidia-smi runs for the whole benchmark (its own loop, `-lms`): starting a process every
 * sample from the process that holds the GPU context cost about 0.1 s per UNet step on the H100.
 */
export function gpuMemoryMonitor(intervalMs = 250, card = 0) {
  const state = { name: undefined as string | undefined, peakMiB: 0, lastMiB: 0, baseMiB: undefined as number | undefined };
  const perCard = new Map<number, number>();
  const smi = spawn('nvidia-smi', [...NVIDIA_SMI_QUERY, `--loop-ms=${intervalMs}`], { stdio: ['ignore', 'pipe', 'ignore'] });
  // No nvidia-smi (no NVIDIA card): nothing is sampled and the readings stay empty.
  smi.on('error', () => {});
  createInterface({ input: smi.stdout! }).on('line', (line) => {
    const gpu = parseNvidiaSmiLine(line);
    if (!gpu) return;
    const mib = gpu.memoryUsedMiB;
    perCard.set(gpu.index, Math.max(perCard.get(gpu.index) ?? 0, mib));
    if (gpu.index !== card) return;
    state.name = gpu.name;
    state.baseMiB ??= mib;
    state.lastMiB = mib;
    state.peakMiB = Math.max(state.peakMiB, mib);
  });
  return {
    get name() {
      return state.name;
    },
    get peakMiB() {
      return state.peakMiB;
    },
    get lastMiB() {
      return state.lastMiB;
    },
    get ownPeakMiB() {
      return Math.max(0, state.peakMiB - (state.baseMiB ?? 0));
    },
    get baseMiB() {
      return state.baseMiB ?? 0;
    },
    /** Peak memory used on every card since the last reset, by CUDA device id. */
    peakPerCardMiB(): Record<number, number> {
      return Object.fromEntries(perCard);
    },
    /** Starts a new peak from the next reading (to measure one stage). */
    resetPeak() {
      state.peakMiB = 0;
      perCard.clear();
    },
    stop() {
      smi.kill();
    },
  };
}
