// onnxruntime's C API, reached through koffi in the same native library onnxruntime-node loads,
// for what the node binding does not expose: its CUDA provider gets only `deviceId`, and no
// allocator can be shared between sessions. The OrtApi struct is a table of function pointers
// whose order never changes once a version ships (onnxruntime_c_api.cc, ort_api_1_to_N), so a
// function is found by its position in API_FUNCTIONS.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { nativeDir } from './onnxruntime-package.js';

/**
 * The OrtApi table in order, versions 1–16 (the newest function used here, CreateAndRegisterAllocatorV2,
 * came in 16). Checked in the tests against the positions onnxruntime itself asserts.
 */
// biome-ignore format: grouped by API version, as onnxruntime lists them
export const API_FUNCTIONS = [
  // 1
  'CreateStatus', 'GetErrorCode', 'GetErrorMessage',
  'CreateEnv', 'CreateEnvWithCustomLogger', 'EnableTelemetryEvents', 'DisableTelemetryEvents',
  'CreateSession', 'CreateSessionFromArray', 'Run',
  'CreateSessionOptions', 'SetOptimizedModelFilePath', 'CloneSessionOptions', 'SetSessionExecutionMode', 'EnableProfiling', 'DisableProfiling',
  'EnableMemPattern', 'DisableMemPattern', 'EnableCpuMemArena', 'DisableCpuMemArena', 'SetSessionLogId', 'SetSessionLogVerbosityLevel',
  'SetSessionLogSeverityLevel', 'SetSessionGraphOptimizationLevel', 'SetIntraOpNumThreads', 'SetInterOpNumThreads',
  'CreateCustomOpDomain', 'CustomOpDomain_Add', 'AddCustomOpDomain', 'RegisterCustomOpsLibrary',
  'SessionGetInputCount', 'SessionGetOutputCount', 'SessionGetOverridableInitializerCount', 'SessionGetInputTypeInfo',
  'SessionGetOutputTypeInfo', 'SessionGetOverridableInitializerTypeInfo', 'SessionGetInputName', 'SessionGetOutputName',
  'SessionGetOverridableInitializerName',
  'CreateRunOptions', 'RunOptionsSetRunLogVerbosityLevel', 'RunOptionsSetRunLogSeverityLevel', 'RunOptionsSetRunTag',
  'RunOptionsGetRunLogVerbosityLevel', 'RunOptionsGetRunLogSeverityLevel', 'RunOptionsGetRunTag', 'RunOptionsSetTerminate',
  'RunOptionsUnsetTerminate',
  'CreateTensorAsOrtValue', 'CreateTensorWithDataAsOrtValue', 'IsTensor', 'GetTensorMutableData',
  'FillStringTensor', 'GetStringTensorDataLength', 'GetStringTensorContent',
  'CastTypeInfoToTensorInfo', 'GetOnnxTypeFromTypeInfo', 'CreateTensorTypeAndShapeInfo', 'SetTensorElementType',
  'SetDimensions', 'GetTensorElementType', 'GetDimensionsCount', 'GetDimensions', 'GetSymbolicDimensions',
  'GetTensorShapeElementCount', 'GetTensorTypeAndShape', 'GetTypeInfo', 'GetValueType', 'CreateMemoryInfo',
  'CreateCpuMemoryInfo', 'CompareMemoryInfo', 'MemoryInfoGetName', 'MemoryInfoGetId', 'MemoryInfoGetMemType',
  'MemoryInfoGetType', 'AllocatorAlloc', 'AllocatorFree', 'AllocatorGetInfo', 'GetAllocatorWithDefaultOptions',
  'AddFreeDimensionOverride', 'GetValue', 'GetValueCount', 'CreateValue', 'CreateOpaqueValue', 'GetOpaqueValue',
  'KernelInfoGetAttribute_float', 'KernelInfoGetAttribute_int64', 'KernelInfoGetAttribute_string',
  'KernelContext_GetInputCount', 'KernelContext_GetOutputCount', 'KernelContext_GetInput', 'KernelContext_GetOutput',
  'ReleaseEnv', 'ReleaseStatus', 'ReleaseMemoryInfo', 'ReleaseSession', 'ReleaseValue', 'ReleaseRunOptions',
  'ReleaseTypeInfo', 'ReleaseTensorTypeAndShapeInfo', 'ReleaseSessionOptions', 'ReleaseCustomOpDomain',
  // 2
  'GetDenotationFromTypeInfo', 'CastTypeInfoToMapTypeInfo', 'CastTypeInfoToSequenceTypeInfo', 'GetMapKeyType',
  'GetMapValueType', 'GetSequenceElementType', 'ReleaseMapTypeInfo', 'ReleaseSequenceTypeInfo', 'SessionEndProfiling',
  'SessionGetModelMetadata', 'ModelMetadataGetProducerName', 'ModelMetadataGetGraphName', 'ModelMetadataGetDomain',
  'ModelMetadataGetDescription', 'ModelMetadataLookupCustomMetadataMap', 'ModelMetadataGetVersion', 'ReleaseModelMetadata',
  // 3
  'CreateEnvWithGlobalThreadPools', 'DisablePerSessionThreads', 'CreateThreadingOptions', 'ReleaseThreadingOptions',
  'ModelMetadataGetCustomMetadataMapKeys', 'AddFreeDimensionOverrideByName',
  // 4
  'GetAvailableProviders', 'ReleaseAvailableProviders',
  // 5
  'GetStringTensorElementLength', 'GetStringTensorElement', 'FillStringTensorElement', 'AddSessionConfigEntry',
  'CreateAllocator', 'ReleaseAllocator', 'RunWithBinding', 'CreateIoBinding', 'ReleaseIoBinding', 'BindInput',
  'BindOutput', 'BindOutputToDevice', 'GetBoundOutputNames', 'GetBoundOutputValues', 'ClearBoundInputs',
  'ClearBoundOutputs', 'TensorAt', 'CreateAndRegisterAllocator', 'SetLanguageProjection', 'SessionGetProfilingStartTimeNs',
  'SetGlobalIntraOpNumThreads', 'SetGlobalInterOpNumThreads', 'SetGlobalSpinControl',
  // 6
  'AddInitializer', 'CreateEnvWithCustomLoggerAndGlobalThreadPools', 'SessionOptionsAppendExecutionProvider_CUDA',
  'SessionOptionsAppendExecutionProvider_ROCM', 'SessionOptionsAppendExecutionProvider_OpenVINO', 'SetGlobalDenormalAsZero',
  'CreateArenaCfg', 'ReleaseArenaCfg',
  // 7
  'ModelMetadataGetGraphDescription', 'SessionOptionsAppendExecutionProvider_TensorRT', 'SetCurrentGpuDeviceId',
  'GetCurrentGpuDeviceId',
  // 8
  'KernelInfoGetAttributeArray_float', 'KernelInfoGetAttributeArray_int64', 'CreateArenaCfgV2', 'AddRunConfigEntry',
  'CreatePrepackedWeightsContainer', 'ReleasePrepackedWeightsContainer', 'CreateSessionWithPrepackedWeightsContainer',
  'CreateSessionFromArrayWithPrepackedWeightsContainer',
  // 9
  'SessionOptionsAppendExecutionProvider_TensorRT_V2', 'CreateTensorRTProviderOptions', 'UpdateTensorRTProviderOptions',
  'GetTensorRTProviderOptionsAsString', 'ReleaseTensorRTProviderOptions', 'EnableOrtCustomOps', 'RegisterAllocator',
  'UnregisterAllocator', 'IsSparseTensor', 'CreateSparseTensorAsOrtValue', 'FillSparseTensorCoo', 'FillSparseTensorCsr',
  'FillSparseTensorBlockSparse', 'CreateSparseTensorWithValuesAsOrtValue', 'UseCooIndices', 'UseCsrIndices',
  'UseBlockSparseIndices', 'GetSparseTensorFormat', 'GetSparseTensorValuesTypeAndShape', 'GetSparseTensorValues',
  'GetSparseTensorIndicesTypeShape', 'GetSparseTensorIndices',
  // 10
  'HasValue', 'KernelContext_GetGPUComputeStream', 'GetTensorMemoryInfo', 'GetExecutionProviderApi',
  'SessionOptionsSetCustomCreateThreadFn', 'SessionOptionsSetCustomThreadCreationOptions', 'SessionOptionsSetCustomJoinThreadFn',
  'SetGlobalCustomCreateThreadFn', 'SetGlobalCustomThreadCreationOptions', 'SetGlobalCustomJoinThreadFn',
  'SynchronizeBoundInputs', 'SynchronizeBoundOutputs',
  // 11
  'SessionOptionsAppendExecutionProvider_CUDA_V2', 'CreateCUDAProviderOptions', 'UpdateCUDAProviderOptions',
  'GetCUDAProviderOptionsAsString', 'ReleaseCUDAProviderOptions', 'SessionOptionsAppendExecutionProvider_MIGraphX',
  // 12
  'AddExternalInitializers', 'CreateOpAttr', 'ReleaseOpAttr', 'CreateOp', 'InvokeOp', 'ReleaseOp',
  'SessionOptionsAppendExecutionProvider', 'CopyKernelInfo', 'ReleaseKernelInfo',
  // 13
  'GetTrainingApi', 'SessionOptionsAppendExecutionProvider_CANN', 'CreateCANNProviderOptions', 'UpdateCANNProviderOptions',
  'GetCANNProviderOptionsAsString', 'ReleaseCANNProviderOptions',
  // 14
  'MemoryInfoGetDeviceType', 'UpdateEnvWithCustomLogLevel', 'SetGlobalIntraOpThreadAffinity', 'RegisterCustomOpsLibrary_V2',
  'RegisterCustomOpsUsingFunction', 'KernelInfo_GetInputCount', 'KernelInfo_GetOutputCount', 'KernelInfo_GetInputName',
  'KernelInfo_GetOutputName', 'KernelInfo_GetInputTypeInfo', 'KernelInfo_GetOutputTypeInfo', 'KernelInfoGetAttribute_tensor',
  'HasSessionConfigEntry', 'GetSessionConfigEntry',
  // 15
  'SessionOptionsAppendExecutionProvider_Dnnl', 'CreateDnnlProviderOptions', 'UpdateDnnlProviderOptions',
  'GetDnnlProviderOptionsAsString', 'ReleaseDnnlProviderOptions', 'KernelInfo_GetNodeName', 'KernelInfo_GetLogger',
  'KernelContext_GetLogger', 'Logger_LogMessage', 'Logger_GetLoggingSeverityLevel', 'KernelInfoGetConstantInput_tensor',
  'CastTypeInfoToOptionalTypeInfo', 'GetOptionalContainedTypeInfo', 'GetResizedStringTensorElementBuffer',
  'KernelContext_GetAllocator', 'GetBuildInfoString',
  // 16
  'CreateROCMProviderOptions', 'UpdateROCMProviderOptions', 'GetROCMProviderOptionsAsString', 'ReleaseROCMProviderOptions',
  'CreateAndRegisterAllocatorV2', 'RunAsync', 'UpdateTensorRTProviderOptionsWithValue', 'GetTensorRTProviderOptionsByName',
  'UpdateCUDAProviderOptionsWithValue', 'GetCUDAProviderOptionsByName', 'KernelContext_GetResource',
] as const;

export type ApiFunction = (typeof API_FUNCTIONS)[number];

/** The API version asked of onnxruntime: the last one API_FUNCTIONS lists in full. */
export const API_VERSION = 16;

/** The C signatures of the functions used, in koffi's syntax (every OrtStatus* is null on success). */
const SIGNATURES = {
  GetErrorMessage: 'const char* GetErrorMessage(OrtStatus* status)',
  ReleaseStatus: 'void ReleaseStatus(OrtStatus* status)',
  CreateEnv: 'OrtStatus* CreateEnv(int level, const char* logid, _Out_ OrtEnv** out)',
  CreateMemoryInfo: 'OrtStatus* CreateMemoryInfo(const char* name, int allocatorType, int id, int memType, _Out_ OrtMemoryInfo** out)',
  ReleaseMemoryInfo: 'void ReleaseMemoryInfo(OrtMemoryInfo* info)',
  CreateArenaCfgV2: 'OrtStatus* CreateArenaCfgV2(const char** keys, const size_t* values, size_t count, _Out_ OrtArenaCfg** out)',
  ReleaseArenaCfg: 'void ReleaseArenaCfg(OrtArenaCfg* cfg)',
  CreateAndRegisterAllocatorV2:
    'OrtStatus* CreateAndRegisterAllocatorV2(OrtEnv* env, const char* providerType, OrtMemoryInfo* info, OrtArenaCfg* cfg, const char** keys, const char** values, size_t count)',
  UnregisterAllocator: 'OrtStatus* UnregisterAllocator(OrtEnv* env, OrtMemoryInfo* info)',
} as const satisfies Partial<Record<ApiFunction, string>>;

type Signatures = typeof SIGNATURES;
// biome-ignore lint/suspicious/noExplicitAny: koffi's decoded functions are untyped; each is wrapped by a typed method below.
type NativeFunction = (...args: any[]) => any;

/** OrtAllocatorType and OrtMemType values (onnxruntime_c_api.h). */
export const ORT_ARENA_ALLOCATOR = 1;
export const ORT_MEM_TYPE_DEFAULT = 0;

/** An OrtStatus that was not null: the call failed with onnxruntime's message. */
export class OrtCallError extends Error {
  constructor(fn: string, message: string) {
    super(`onnxruntime ${fn}: ${message}`);
    this.name = 'OrtCallError';
  }
}

/** The library file of onnxruntime inside an onnxruntime-node package's native directory. */
export function libraryFile(dir: string, platform: NodeJS.Platform = process.platform): string {
  return join(dir, platform === 'win32' ? 'onnxruntime.dll' : platform === 'darwin' ? 'libonnxruntime.1.dylib' : 'libonnxruntime.so.1');
}

type Koffi = typeof import('koffi');
type Pointer = unknown;

const opened = new Map<string, OrtCApi>();

/** onnxruntime's C API in the library the active onnxruntime-node package loads. */
export class OrtCApi {
  private readonly fns = new Map<keyof Signatures, NativeFunction>();
  private envPtr: Pointer | undefined;

  private constructor(
    private readonly koffi: Koffi,
    private readonly table: Pointer,
    readonly version: string,
  ) {}

  /** Opens the API; throws where the library or koffi cannot be loaded, or the library is older than API_VERSION. */
  static open(dir = nativeDir()): OrtCApi {
    // One per library: koffi's named types may be declared once per process.
    let api = opened.get(dir);
    if (!api) {
      api = OrtCApi.load(dir);
      opened.set(dir, api);
    }
    return api;
  }

  private static load(dir: string): OrtCApi {
    const file = libraryFile(dir);
    if (!existsSync(file)) throw new Error(`onnxruntime's library is not at ${file}`);
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    for (const name of ['OrtStatus', 'OrtEnv', 'OrtMemoryInfo', 'OrtArenaCfg', 'OrtApi']) {
      try {
        koffi.opaque(name);
      } catch {
        // declared by an earlier open
      }
    }
    const lib = koffi.load(file);
    const base = lib.func('void* OrtGetApiBase()')() as Pointer;
    const [getApi, getVersion] = koffi.decode(base, 'void*', 2) as [Pointer, Pointer];
    const version = koffi.call(getVersion, koffi.proto('const char* GetVersionString()')) as string;
    const table = koffi.call(getApi, koffi.proto('void* GetApi(uint32_t version)'), API_VERSION) as Pointer;
    if (!table) throw new Error(`onnxruntime ${version} does not offer C API version ${API_VERSION}`);
    return new OrtCApi(koffi, table, version);
  }

  private fn(name: keyof Signatures): NativeFunction {
    let f = this.fns.get(name);
    if (!f) {
      const index = API_FUNCTIONS.indexOf(name);
      const pointers = this.koffi.decode(this.table, 'void*', index + 1) as Pointer[];
      f = this.koffi.decode(pointers[index], this.koffi.proto(SIGNATURES[name])) as NativeFunction;
      this.fns.set(name, f);
    }
    return f;
  }

  /** Calls a function that returns an OrtStatus, turning a failure into an OrtCallError. */
  private check(name: keyof Signatures, ...args: unknown[]): void {
    const status = this.fn(name)(...args);
    if (!status) return;
    const message = this.fn('GetErrorMessage')(status) as string;
    this.fn('ReleaseStatus')(status);
    throw new OrtCallError(name, message);
  }

  /** The process's onnxruntime environment (one per process: onnxruntime-node's, where it made it first). */
  env(): Pointer {
    if (!this.envPtr) {
      const out: Pointer[] = [null];
      this.check('CreateEnv', 3, 'svd-studio', out);
      this.envPtr = out[0];
    }
    return this.envPtr;
  }

  /**
   * Registers one arena allocator for `device` in the environment, which every session created
   * with the session config entry `session.use_env_allocators` = 1 uses instead of its own.
   * `providerType` names the provider that makes it ("CUDAExecutionProvider"; "CPUExecutionProvider"
   * for the CPU), `memoryName` its memory ("Cuda", "Cpu").
   */
  registerArena(a: { providerType: string; memoryName: string; deviceId: number; arena: Record<string, number>; providerOptions?: Record<string, string> }): void {
    const env = this.env();
    const info = this.memoryInfo(a.memoryName, a.deviceId);
    const cfgOut: Pointer[] = [null];
    const keys = Object.keys(a.arena);
    try {
      this.check(
        'CreateArenaCfgV2',
        keys,
        keys.map((k) => a.arena[k]),
        keys.length,
        cfgOut,
      );
      const options = Object.entries(a.providerOptions ?? {});
      this.check(
        'CreateAndRegisterAllocatorV2',
        env,
        a.providerType,
        info,
        cfgOut[0],
        options.map(([k]) => k),
        options.map(([, v]) => v),
        options.length,
      );
    } finally {
      if (cfgOut[0]) this.fn('ReleaseArenaCfg')(cfgOut[0]);
      this.fn('ReleaseMemoryInfo')(info);
    }
  }

  /** Removes the allocator registered for that memory and device (its memory goes back once no session uses it). */
  unregisterArena(memoryName: string, deviceId: number): void {
    const info = this.memoryInfo(memoryName, deviceId);
    try {
      this.check('UnregisterAllocator', this.env(), info);
    } finally {
      this.fn('ReleaseMemoryInfo')(info);
    }
  }

  private memoryInfo(name: string, deviceId: number): Pointer {
    const out: Pointer[] = [null];
    this.check('CreateMemoryInfo', name, ORT_ARENA_ALLOCATOR, deviceId, ORT_MEM_TYPE_DEFAULT, out);
    return out[0];
  }
}
