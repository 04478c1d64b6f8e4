// How much GPU memory a worker's jobs may use, measured once when its model loads (before any
// session of its own holds memory): the planner's GPU budget.
import type { Provider } from '../../common/runtime-choices.js';
import { nvidiaGpu } from '../runtime/nvidia-smi.js';

/** On CUDA: the card's free memory less 512 MiB for what nvidia-smi does not see coming (or SVD_GPU_MEMORY_BUDGET_MIB, on any provider). */
export async function defaultGpuBudgetMiB(provider: Provider, deviceId?: number): Promise<number | undefined> {
  const env = process.env.SVD_GPU_MEMORY_BUDGET_MIB;
  if (env !== undefined && env !== '') {
    const mib = Number(env);
    if (!Number.isFinite(mib) || mib <= 0) throw new Error(`SVD_GPU_MEMORY_BUDGET_MIB=${env} is not a positive number of MiB`);
    return mib;
  }
  if (provider !== 'cuda') return undefined;
  const gpu = await nvidiaGpu(10_000, deviceId);
  return gpu ? gpu.memoryTotalMiB - gpu.memoryUsedMiB - 512 : undefined;
}
