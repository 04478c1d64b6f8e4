// What a user may ask of the runtime: the execution provider and WebGPU's memory mode. One list
// each, read by the engine (models/runtime/runtime.ts), the worker protocol and the CLI.
// Browser-safe.
export const providers = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
export type ProviderChoice = (typeof providers)[number];
export type Provider = Exclude<ProviderChoice, 'auto'>;

/** WebGPU's trade of speed for GPU memory (models/runtime/runtime.ts says what each does). */
export const gpuMemoryModes = ['auto', 'fast', 'lean'] as const;
export type GpuMemoryMode = (typeof gpuMemoryModes)[number];
