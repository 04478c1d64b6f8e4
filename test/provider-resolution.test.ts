// Which provider `auto` picks and what it says about the others: the checks on fake machines
// with an injected provider start, and the one line the user reads.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeDir } from '../models/runtime/onnxruntime-package.js';
import { checkCuda, checkWebgpu, childStarter, plainOrtMessage, type GpuProvider, type ProviderCheck, type ProviderStarter } from '../models/runtime/provider-check.js';
import { describeResolution, probeModelPath, providerReport, resolveProvider, sessionOptions } from '../models/runtime/runtime.js';
import { fakeMachines, type FakeMachine } from './fake-cuda.js';

const machine = fakeMachines();

/** A provider start that records its calls and answers as told. */
function starter(answer: { ok: boolean; error?: string; output?: string }) {
  const calls: { provider: GpuProvider; env: NodeJS.ProcessEnv }[] = [];
  const start: ProviderStarter = async (provider, env) => {
    calls.push({ provider, env });
    return { ok: answer.ok, error: answer.error, output: answer.output ?? '' };
  };
  return { start, calls };
}

const checks = (answers: Record<GpuProvider, ProviderCheck>) => async (p: GpuProvider) => answers[p];

describe('auto', () => {
  it('takes CUDA when it starts', async () => {
    expect(await resolveProvider('auto', checks({ cuda: { ok: true }, webgpu: { ok: true } }))).toEqual({ provider: 'cuda', skipped: [] });
  });

  it('takes WebGPU when CUDA does not, and says why', async () => {
    const r = await resolveProvider('auto', checks({ cuda: { ok: false, reason: 'no NVIDIA driver on this machine' }, webgpu: { ok: true } }));
    expect(r.provider).toBe('webgpu');
    expect(describeResolution(r)).toBe('using provider webgpu (CUDA: no NVIDIA driver on this machine)');
  });

  it('falls back to the CPU with one line naming each reason', async () => {
    const r = await resolveProvider(
      'auto',
      checks({
        cuda: { ok: false, reason: "onnxruntime-node's CUDA provider is not installed — run bash scripts/setup.sh --gpu", details: 'x' },
        webgpu: { ok: false, reason: 'no Vulkan driver installed', details: 'y' },
      }),
    );
    expect(r.provider).toBe('cpu');
    expect(r.skipped.map((s) => s.details)).toEqual(['x', 'y']);
    expect(describeResolution(r)).toBe("using provider cpu (CUDA: onnxruntime-node's CUDA provider is not installed — run bash scripts/setup.sh --gpu; WebGPU: no Vulkan driver installed)");
  });

  it('an explicit provider that cannot run is an error with the reason', async () => {
    await expect(resolveProvider('cuda', checks({ cuda: { ok: false, reason: 'libcudnn.so.9 not found — install cuDNN' }, webgpu: { ok: true } }))).rejects.toThrow(
      'provider cuda is not available here: libcudnn.so.9 not found — install cuDNN. Use --provider auto to fall back, or cpu.',
    );
    expect(await resolveProvider('cpu', checks({ cuda: { ok: false }, webgpu: { ok: false } }))).toEqual({ provider: 'cpu', skipped: [] });
  });

  it('the verbose report shows what each check found', async () => {
    const report = await providerReport(
      checks({
        cuda: { ok: false, reason: 'no NVIDIA driver on this machine', details: 'NVIDIA driver: none\nCUDA provider: not installed' },
        webgpu: { ok: true, details: 'Vulkan driver manifests: /x.json' },
      }),
    );
    expect(report).toBe('CUDA: no NVIDIA driver on this machine\n  NVIDIA driver: none\n  CUDA provider: not installed\nWebGPU: available\n  Vulkan driver manifests: /x.json');
  });
});

describe('the CUDA check', () => {
  const colab = (m: FakeMachine, { cudnn = true } = {}) => {
    m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' });
    m.lib('usr/lib/x86_64-linux-gnu', 'libcuda.so.1');
    m.lib(join(m.nvidiaDir, 'cublas/lib'), 'libcublas.so.12', 'libcublasLt.so.12');
    m.lib(join(m.nvidiaDir, 'cuda_runtime/lib'), 'libcudart.so.12');
    m.lib(join(m.nvidiaDir, 'curand/lib'), 'libcurand.so.10');
    return m.lib(join(m.nvidiaDir, 'cudnn/lib'), ...(cudnn ? ['libcudnn.so.9'] : []));
  };

  it('does not start onnxruntime without a driver or without the provider', async () => {
    const s = starter({ ok: true });
    expect(await checkCuda(s.start, machine({ provider: 12 }).env())).toMatchObject({ ok: false, reason: 'no NVIDIA driver on this machine' });
    const m = machine();
    m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' });
    expect(await checkCuda(s.start, m.env())).toMatchObject({ ok: false, reason: "onnxruntime-node's CUDA provider is not installed — run bash scripts/setup.sh --gpu" });
    expect(s.calls).toEqual([]);
  });

  it('starts it when the libraries are there, with the directories the launcher adds', async () => {
    const m = machine({ provider: 12 });
    const cudnn = colab(m);
    const s = starter({ ok: true });
    const result = await checkCuda(s.start, m.env(), 'launched');
    expect(result.ok).toBe(true);
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]!.env.LD_LIBRARY_PATH?.split(':')).toContain(cudnn);
    expect(result.details).toContain(`libcudnn.so.9        ${cudnn} (added to LD_LIBRARY_PATH by the launcher)`);
  });

  it("explains a failed start by the missing library rather than by onnxruntime's message", async () => {
    const m = machine({ provider: 12 });
    colab(m, { cudnn: false });
    const error = 'Could not load library libcudnn.so.9: cannot open shared object file: No such file or directory';
    const result = await checkCuda(starter({ ok: false, error, output: '\x1b[1;31m2026-11-27 [E:onnxruntime:...] noise\x1b[m' }).start, m.env(), 'launched');
    expect(result).toMatchObject({ ok: false, reason: 'libcudnn.so.9 not found — install cuDNN for CUDA 12 (pip install nvidia-cudnn-cu12)' });
    expect(result.details).toContain('onnxruntime said:');
    expect(result.details).toContain(error);
  });

  it("a start that fails with everything in place reports onnxruntime's message, made plain", async () => {
    const m = machine({ provider: 12 });
    colab(m);
    const error =
      '/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:129 std::conditional_t<THRW, void, onnxruntime::common::Status> onnxruntime::CudaCall(ERRTYPE, const char*, const char*, SUCCTYPE, const char*, const char*, int) [with ERRTYPE = cudaError; bool THRW = true; SUCCTYPE = cudaError; std::conditional_t<THRW, void, onnxruntime::common::Status> = void] CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version';
    const result = await checkCuda(starter({ ok: false, error }).start, m.env(), 'launched');
    expect(result.reason).toMatch(/^the CUDA provider failed to start: .*CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version$/);
    expect(result.reason).not.toContain('onnxruntime_src');
  });

  it('in a process started without the pip folders on its library path, says how to start', async () => {
    const m = machine({ provider: 12 });
    colab(m);
    const result = await checkCuda(starter({ ok: false, error: 'libcublasLt.so.12: cannot open shared object file' }).start, m.env(), 'process');
    expect(result.reason).toMatch(/are installed \(.*\) but not on this process's library path — start through npm start or npm run svd/);
  });
});

describe('the WebGPU check', () => {
  it('without the Vulkan loader or a Vulkan driver it does not start onnxruntime', async () => {
    const m = machine();
    const s = starter({ ok: true });
    expect((await checkWebgpu(s.start, m.env())).reason).toBe('the Vulkan loader (libvulkan.so.1) is not installed — apt-get install libvulkan1');
    m.lib('usr/lib/x86_64-linux-gnu', 'libvulkan.so.1');
    expect((await checkWebgpu(s.start, m.env())).reason).toBe("no Vulkan driver installed — install the GPU's Vulkan driver, or set VK_DRIVER_FILES to its *_icd.json");
    expect(s.calls).toEqual([]);
  });

  it('with a driver manifest it starts the provider, and reports a failure plainly', async () => {
    const m = machine();
    m.lib('usr/lib/x86_64-linux-gnu', 'libvulkan.so.1');
    writeFileSync(join(m.lib('usr/share/vulkan/icd.d'), 'nvidia_icd.json'), '{}');
    const error =
      '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters';
    const s = starter({ ok: false, error });
    const result = await checkWebgpu(s.start, m.env());
    expect(s.calls.map((c) => c.provider)).toEqual(['webgpu']);
    expect(result.reason).toBe('it did not start (Failed to get a WebGPU adapter: No supported adapters)');
    expect(result.details).toContain(join(m.root, 'usr/share/vulkan/icd.d/nvidia_icd.json'));
    // VK_DRIVER_FILES replaces the search
    expect((await checkWebgpu(s.start, m.env({ VK_DRIVER_FILES: join(m.root, 'none.json') }))).reason).toMatch(/^no Vulkan driver installed/);
  });
});

describe('plain onnxruntime messages', () => {
  it('drops source locations and error codes', () => {
    expect(
      plainOrtMessage(
        '/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:1988 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.12: cannot open shared object file: No such file or directory',
      ),
    ).toBe('Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.12: cannot open shared object file: No such file or directory');
    expect(plainOrtMessage('plain words')).toBe('plain words');
  });
});

describe('the child-process start', () => {
  // On a machine without the CUDA provider (every CPU-only machine), onnxruntime fails to load it
  // and prints its red error: all of that must come back as data, none of it on our output.
  it.skipIf(existsSync(join(nativeDir(), 'libonnxruntime_providers_cuda.so')))("keeps onnxruntime's output and error", async () => {
    const start = childStarter(probeModelPath, (p) => sessionOptions(p));
    const run = await start('cuda', process.env);
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/Failed to load shared library|providers_shared/);
    expect(run.output).toContain('libonnxruntime_providers_shared.so');
    expect(run.output).not.toContain('\x1b[');
  });
});
