// One CUDA memory arena for all of a process's sessions on a card. By default each onnxruntime
// session has its own arena, which grows by powers of two and keeps what it took: with the four
// networks open, the card holds the sum of every stage's peak (on a 16 GB card that does not fit,
// so each job reopened its stages). Registered in onnxruntime's environment and used by sessions
// created with `session.use_env_allocators`, one arena holds the largest stage's peak instead,
// and grows by what is asked rather than by doubling.
import { OrtCApi } from './ort-c-api.js';

/** onnxruntime's ArenaExtendStrategy: kNextPowerOfTwo = 0, kSameAsRequested = 1. */
const SAME_AS_REQUESTED = 1;

export type CudaArenaMode = 'shared' | 'own';
export const cudaArenaModes = ['shared', 'own'] as const satisfies readonly CudaArenaMode[];

type Registration = { ok: true } | { ok: false; reason: string };

const shared = new Map<number, Registration>();

/**
 * Registers the shared arena for CUDA device `deviceId` once per process. Call it only where the
 * CUDA provider is known to start (onnxruntime aborts the process when asked for a CUDA
 * allocator without one). Returns why not where it cannot be done (koffi or the library missing,
 * an onnxruntime older than the API it needs); the sessions then keep their own arenas.
 */
export function shareCudaArena(deviceId: number): Registration {
  let result = shared.get(deviceId);
  if (result) return result;
  try {
    OrtCApi.open().registerArena({
      providerType: 'CUDAExecutionProvider',
      memoryName: 'Cuda',
      deviceId,
      arena: { arena_extend_strategy: SAME_AS_REQUESTED },
      providerOptions: { device_id: String(deviceId) },
    });
    result = { ok: true };
  } catch (err) {
    result = { ok: false, reason: (err as Error).message };
  }
  shared.set(deviceId, result);
  return result;
}

/**
 * Gives the shared arena's memory back to the card: the environment lets go of it, and its memory
 * is freed once no session uses it (call it after closing them). The next shareCudaArena makes a
 * new one. Without it an arena keeps what it took for as long as the process runs.
 */
export function releaseSharedCudaArena(deviceId: number): void {
  if (shared.get(deviceId)?.ok !== true) return;
  shared.delete(deviceId);
  OrtCApi.open().unregisterArena('Cuda', deviceId);
}

/** Whether sessions on `deviceId` should use the shared arena (registered earlier in this process). */
export function usesSharedCudaArena(deviceId: number): boolean {
  return shared.get(deviceId)?.ok === true;
}

/** The session config entry that makes a session use the environment's allocators. */
export const USE_ENV_ALLOCATORS = { 'session.use_env_allocators': '1' } as const;
