// How many inference workers the server starts, and on which cards: one per NVIDIA card (all that
// nvidia-smi lists, or those --gpus names), else one; `--workers N` runs N without a card (CPU).
import type { WorkerSlot } from './pool.js';

export interface SlotChoice {
  gpus?: number[];
  workers?: number;
  provider: string;
}

/** `cards`: the CUDA device ids nvidia-smi lists here. Throws with what to do when the choice cannot be met. */
export function workerSlots(choice: SlotChoice, cards: number[]): WorkerSlot[] {
  if (choice.gpus && choice.workers) throw new Error('--gpus and --workers both choose the workers: give one of them');
  if (choice.workers) return Array.from({ length: choice.workers }, (_, i) => ({ name: `worker ${i + 1}` }));
  if (choice.gpus) {
    if (choice.provider === 'cpu') throw new Error('--gpus places workers on NVIDIA cards, but --provider is cpu: use --workers N for CPU workers');
    const missing = choice.gpus.filter((g) => !cards.includes(g));
    if (missing.length) {
      throw new Error(`--gpus ${choice.gpus.join(',')}: no card ${missing.join(', ')} here (${cards.length ? `nvidia-smi lists ${cards.join(', ')}` : 'nvidia-smi lists no NVIDIA card'})`);
    }
    return choice.gpus.map((g) => ({ name: `gpu ${g}`, deviceId: g }));
  }
  if (choice.provider === 'cpu' || !cards.length) return [{ name: 'worker 1' }];
  // WebGPU cannot be pointed at a card: one worker, on the first.
  if (choice.provider === 'webgpu') return [{ name: `gpu ${cards[0]}`, deviceId: cards[0] }];
  return cards.map((g) => ({ name: `gpu ${g}`, deviceId: g }));
}
