// One line naming the machine, provider, versions and date, printed by every benchmark.
import { cpus, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { nvidiaGpu } from '../models/pipeline/runtime.js';

export function machineLine(provider: string): string {
  const require = createRequire(import.meta.url);
  const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `# ${new Date().toISOString()} | provider ${provider} | onnxruntime-node ${ortVersion} | node ${process.version} | ${cpus().length} × ${cpu} | ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM${process.env.GPU_NAME ? ` | ${process.env.GPU_NAME}` : ''}`;
}

/**
 * Samples nvidia-smi (where present) while a benchmark runs: the card's name and peak memory
 * used. `peakMiB` is the whole card; `ownPeakMiB` subtracts what was in use at the first sample
 * (another process holding memory to simulate a smaller card, say), so it is this process's own.
 */
export function gpuMemoryMonitor(intervalMs = 250) {
  const state = { name: undefined as string | undefined, peakMiB: 0, lastMiB: 0, baseMiB: undefined as number | undefined };
  const timer = setInterval(() => {
    void nvidiaGpu().then((gpu) => {
      if (!gpu) return;
      state.name = gpu.name;
      state.baseMiB ??= gpu.memoryUsedMiB;
      state.lastMiB = gpu.memoryUsedMiB;
      state.peakMiB = Math.max(state.peakMiB, state.lastMiB);
    });
  }, intervalMs);
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
    /** Starts a new peak from the next reading (to measure one stage). */
    resetPeak() {
      state.peakMiB = 0;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
