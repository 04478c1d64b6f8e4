// onnxruntime's C API through koffi (models/runtime/ort-c-api.ts): the function table's order
// against the positions onnxruntime asserts for itself, and an allocator registered in the
// environment that a session of onnxruntime-node then runs on. The CUDA arena itself needs a
// card (BENCHMARKS.md, "A 16 GB card: job 2"); asking for one without the CUDA provider aborts
// the process, so it is not called here.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { API_FUNCTIONS, OrtCApi, OrtCallError } from '../models/runtime/ort-c-api.js';
import { packageVersion } from '../models/runtime/onnxruntime-package.js';
import { USE_ENV_ALLOCATORS, usesSharedCudaArena } from '../models/runtime/cuda-arena.js';
import { probeModelPath, sessionOptions } from '../models/runtime/runtime.js';

describe('the OrtApi function table', () => {
  it("lists each function where onnxruntime's own static_asserts put it (onnxruntime_c_api.cc)", () => {
    const asserted: Record<string, number> = {
      ReleaseCustomOpDomain: 101,
      ReleaseModelMetadata: 118,
      AddFreeDimensionOverrideByName: 124,
      ReleaseAvailableProviders: 126,
      SetGlobalSpinControl: 149,
      ReleaseArenaCfg: 157,
      GetCurrentGpuDeviceId: 161,
      CreateSessionFromArrayWithPrepackedWeightsContainer: 169,
      GetSparseTensorIndices: 191,
      SynchronizeBoundOutputs: 203,
      SessionOptionsAppendExecutionProvider_MIGraphX: 209,
      ReleaseKernelInfo: 218,
      ReleaseCANNProviderOptions: 224,
      GetSessionConfigEntry: 238,
      GetBuildInfoString: 254,
      KernelContext_GetResource: 265,
    };
    for (const [name, index] of Object.entries(asserted)) expect([name, API_FUNCTIONS.indexOf(name as (typeof API_FUNCTIONS)[number])]).toEqual([name, index]);
    expect(API_FUNCTIONS.length).toBe(266);
    expect(new Set(API_FUNCTIONS).size).toBe(API_FUNCTIONS.length);
  });
});

describe('the C API of the loaded onnxruntime', () => {
  const api = OrtCApi.open();

  it('is the library onnxruntime-node loads', () => {
    expect(api.version).toBe(packageVersion());
  });

  it('registers an arena in the environment, which a session with use_env_allocators runs on', async () => {
    api.registerArena({ providerType: 'CPUExecutionProvider', memoryName: 'Cpu', deviceId: 0, arena: { arena_extend_strategy: 1 } });
    const session = await ort.InferenceSession.create(probeModelPath(), { executionProviders: ['cpu'], extra: { ...USE_ENV_ALLOCATORS } });
    try {
      const y = (await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [1, 4]) })).y!;
      expect([...(y.data as Float32Array)]).toEqual([2, 3, 4, 5]);
    } finally {
      await session.release();
    }
    // The environment held it: it can be removed once, and then there is none.
    api.unregisterArena('Cpu', 0);
    expect(() => api.unregisterArena('Cpu', 0)).toThrow(OrtCallError);
    // A new one can be made after (as a job does after the one before gave the card back).
    api.registerArena({ providerType: 'CPUExecutionProvider', memoryName: 'Cpu', deviceId: 0, arena: { arena_extend_strategy: 1 } });
    const again = await ort.InferenceSession.create(probeModelPath(), { executionProviders: ['cpu'], extra: { ...USE_ENV_ALLOCATORS } });
    try {
      expect([...((await again.run({ x: new ort.Tensor('float32', Float32Array.of(0, 0, 0, 1), [1, 4]) })).y!.data as Float32Array)]).toEqual([1, 1, 1, 2]);
    } finally {
      await again.release();
      api.unregisterArena('Cpu', 0);
    }
  });

  it("turns a failed call into an error carrying onnxruntime's message", () => {
    expect(() => api.registerArena({ providerType: 'CPUExecutionProvider', memoryName: 'Cpu', deviceId: 0, arena: { no_such_setting: 1 } })).toThrow(/onnxruntime CreateArenaCfgV2: .*no_such_setting/);
  });

  it('CUDA sessions ask for the shared arena only where one was registered', () => {
    expect(usesSharedCudaArena(0)).toBe(false);
    expect(sessionOptions('cuda', { deviceId: 0 }).extra).toBeUndefined();
  });
});
