// Finding the CUDA provider's libraries on fake GPU machines (temp directories laid out as Colab,
// a CUDA box, CUDA 13 wheels…), and what the user is told when something is missing.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cudaLibraryEnv, cudaReadiness, discoverCuda, formatCudaReport, searchOptionsFromEnv } from '../models/runtime/cuda-libraries.js';
import { readElfDynamic } from '../models/runtime/elf-needed.js';
import { fakeMachines, providerNeeds, type FakeMachine, writeFakeElf } from './fake-cuda.js';

const machine = fakeMachines();

const discover = (m: FakeMachine, env: NodeJS.ProcessEnv = {}) => discoverCuda({ ...searchOptionsFromEnv(m.env(env)), platform: 'linux/x64' });

/** Colab: driver libraries in /usr/lib64-nvidia (on LD_LIBRARY_PATH), CUDA 12 and cuDNN 9 from PyTorch's pip packages. */
function colab(m: FakeMachine, { cudnn = true } = {}) {
  m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' });
  const driver = m.lib('usr/lib64-nvidia', 'libcuda.so.1');
  const dirs = {
    cublas: m.lib(join(m.nvidiaDir, 'cublas/lib'), 'libcublas.so.12', 'libcublasLt.so.12', 'libnvblas.so.12'),
    runtime: m.lib(join(m.nvidiaDir, 'cuda_runtime/lib'), 'libcudart.so.12'),
    curand: m.lib(join(m.nvidiaDir, 'curand/lib'), 'libcurand.so.10'),
    cufft: m.lib(join(m.nvidiaDir, 'cufft/lib'), 'libcufft.so.11'),
    cudnn: m.lib(join(m.nvidiaDir, 'cudnn/lib'), ...(cudnn ? ['libcudnn.so.9', 'libcudnn_graph.so.9', 'libcudnn_ops.so.9'] : [])),
  };
  return { driver, dirs };
}

describe('reading the provider file', () => {
  it('reads DT_NEEDED from an ELF file and nothing from other files', () => {
    const m = machine();
    const so = join(m.root, 'x.so');
    writeFakeElf(so, providerNeeds(13));
    expect(readElfDynamic(so)?.needed).toEqual(providerNeeds(13));
    writeFileSync(join(m.root, 'not-elf.so'), 'hello, this is not an ELF file at all, but long enough to have a header');
    expect(readElfDynamic(join(m.root, 'not-elf.so'))).toBeUndefined();
  });

  it('takes the CUDA major version and the list of libraries from the provider itself', () => {
    const m = machine({ provider: 13 });
    m.nvidiaSmi({ version: '580.95.05', cuda: '13.0' });
    const d = discover(m);
    expect(d.provider).toMatchObject({ cudaMajor: 13, needed: ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13', 'libcuda.so.1'] });
    // cuDNN is opened at run time (not in DT_NEEDED) but needed all the same
    expect(d.libraries.map((l) => l.soname)).toEqual(['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13', 'libcuda.so.1', 'libcudnn.so.9']);
  });
});

describe('finding the libraries', () => {
  it('a truncated provider file (a broken download): asks for cuDNN alone and leaves the rest to onnxruntime', () => {
    const m = machine({ provider: 12 });
    const provider = join(m.providerDir, 'libonnxruntime_providers_cuda.so');
    writeFileSync(provider, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(200, 0xff)]));
    m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' });
    const cudnn = m.lib(join(m.nvidiaDir, 'cudnn/lib'), 'libcudnn.so.9');
    const d = discover(m);
    expect(d.provider).toEqual({ dir: m.providerDir, cudaMajor: undefined, needed: [] });
    expect(d.addDirs).toEqual([cudnn]);
  });

  it("on Colab: finds PyTorch's pip CUDA 12 and cuDNN 9 libraries and adds their folders to the library path", () => {
    const m = machine({ provider: 12 });
    const { driver, dirs } = colab(m);
    const env = { LD_LIBRARY_PATH: driver };
    const d = discover(m, env);
    expect(d.libraries.every((l) => l.path)).toBe(true);
    expect(d.libraries.find((l) => l.soname === 'libcuda.so.1')).toMatchObject({ path: join(driver, 'libcuda.so.1'), onLoaderPath: true });
    expect(d.addDirs).toEqual([dirs.cublas, dirs.curand, dirs.runtime, dirs.cudnn]); // in the provider's order; not cuFFT's: not needed
    expect(cudaReadiness(d, 'launched')).toEqual({});
    expect(cudaLibraryEnv(m.env(env))).toEqual({ LD_LIBRARY_PATH: [driver, dirs.cublas, dirs.curand, dirs.runtime, dirs.cudnn].join(':') });
    // a process started without them cannot load them, and is told how to start
    expect(cudaReadiness(d, 'process').suspect).toMatch(
      /^libcublasLt\.so\.12, libcublas\.so\.12, libcurand\.so\.10, libcudart\.so\.12 and libcudnn\.so\.9 are installed \(.*\) but not on this process's library path — start through npm start or npm run svd/,
    );
  });

  it('once restarted with them on LD_LIBRARY_PATH, needs nothing more and does not look for pip packages', () => {
    const m = machine({ provider: 12 });
    const { driver } = colab(m);
    const first = cudaLibraryEnv(m.env({ LD_LIBRARY_PATH: driver }));
    const d = discover(m, first);
    expect(d.addDirs).toEqual([]);
    expect(d.nvidiaDirs).toEqual([]);
    expect(cudaReadiness(d, 'process')).toEqual({});
    expect(cudaLibraryEnv(m.env(first))).toEqual({});
  });

  it('on a CUDA box: finds the toolkit under /usr/local/cuda-12.x and cuDNN in the system library folder', () => {
    const m = machine({ provider: 12 });
    m.nvidiaSmi({ version: '535.183.01', cuda: '12.2' });
    m.lib('usr/lib/x86_64-linux-gnu', 'libcuda.so.1', 'libcudnn.so.9');
    const toolkit = m.lib('usr/local/cuda-12.2/targets/x86_64-linux/lib', 'libcublas.so.12', 'libcublasLt.so.12', 'libcudart.so.12', 'libcurand.so.10');
    m.lib('usr/local/cuda-11.8/lib64', 'libcublas.so.11', 'libcudart.so.11');
    const d = discover(m);
    expect(d.libraries.find((l) => l.soname === 'libcudnn.so.9')).toMatchObject({ onLoaderPath: true, path: join(m.root, 'usr/lib/x86_64-linux-gnu/libcudnn.so.9') });
    expect(d.addDirs).toEqual([toolkit]);
    expect(cudaReadiness(d, 'launched')).toEqual({});
  });

  it('prefers the newest toolkit, and the /usr/local/cuda link over all', () => {
    const m = machine({ provider: 12 });
    m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' });
    m.lib('usr/lib/x86_64-linux-gnu', 'libcuda.so.1', 'libcudnn.so.9');
    const names = ['libcublas.so.12', 'libcublasLt.so.12', 'libcudart.so.12', 'libcurand.so.10'];
    m.lib('usr/local/cuda-12.1/lib64', ...names);
    const newest = m.lib('usr/local/cuda-12.10/lib64', ...names);
    expect(discover(m).addDirs).toEqual([newest]);
    const linked = m.lib('usr/local/cuda/lib64', ...names);
    expect(discover(m).addDirs).toEqual([linked]);
  });

  it('finds CUDA 13 wheels, which put every library in nvidia/cu13/lib and cuDNN in nvidia/cudnn/lib', () => {
    const m = machine({ provider: 13 });
    m.nvidiaSmi({ version: '580.95.05', cuda: '13.0' });
    m.lib('usr/lib/x86_64-linux-gnu', 'libcuda.so.1');
    const cu13 = m.lib(join(m.nvidiaDir, 'cu13/lib'), 'libcublas.so.13', 'libcublasLt.so.13', 'libcudart.so.13', 'libcurand.so.10', 'libcufft.so.12');
    const cudnn = m.lib(join(m.nvidiaDir, 'cudnn/lib'), 'libcudnn.so.9');
    const d = discover(m);
    expect(d.addDirs).toEqual([cu13, cudnn]);
    expect(cudaReadiness(d, 'launched')).toEqual({});
  });
});

describe('what the user is told', () => {
  it('missing cuDNN: names the library and the pip package for the CUDA version of the provider', () => {
    const m = machine({ provider: 12 });
    const { driver } = colab(m, { cudnn: false });
    const d = discover(m, { LD_LIBRARY_PATH: driver });
    expect(d.libraries.find((l) => l.soname === 'libcudnn.so.9')?.path).toBeUndefined();
    expect(cudaReadiness(d, 'launched')).toEqual({ suspect: 'libcudnn.so.9 not found — install cuDNN for CUDA 12 (pip install nvidia-cudnn-cu12)' });
    expect(formatCudaReport(d)).toContain('libcudnn.so.9        NOT FOUND');
  });

  it("PyTorch's cuDNN built for another CUDA (same soname): asks for the CUDA 12 build and says which one is there", () => {
    const m = machine({ provider: 12 });
    const { driver } = colab(m, { cudnn: false });
    const cudnn = m.lib(join(m.nvidiaDir, 'cudnn/lib'), 'libcudnn.so.9');
    m.lib(join(m.nvidiaDir, '..', 'nvidia_cudnn_cu13-9.13.0.50.dist-info'), 'METADATA');
    const d = discover(m, { LD_LIBRARY_PATH: driver });
    expect(d.libraries.find((l) => l.soname === 'libcudnn.so.9')?.path).toBeUndefined();
    expect(cudaReadiness(d, 'launched').suspect).toBe(
      `libcudnn.so.9 not found — install cuDNN for CUDA 12 (pip install nvidia-cudnn-cu12); installed but of another version: libcudnn.so.9 for CUDA 13 (${cudnn})`,
    );
    // the CUDA 12 wheel beside it: found
    m.lib(join(m.nvidiaDir, '..', 'nvidia_cudnn_cu12-9.1.0.70.dist-info'), 'METADATA');
    expect(discover(m, { LD_LIBRARY_PATH: driver }).libraries.find((l) => l.soname === 'libcudnn.so.9')?.path).toBe(join(cudnn, 'libcudnn.so.9'));
  });

  it('libraries of the wrong CUDA major version: asks for the right ones and says which ones are there', () => {
    const m = machine({ provider: 12 });
    m.nvidiaSmi({ version: '580.95.05', cuda: '13.0' });
    m.lib('usr/lib/x86_64-linux-gnu', 'libcuda.so.1');
    const cu13 = m.lib(join(m.nvidiaDir, 'cu13/lib'), 'libcublas.so.13', 'libcublasLt.so.13', 'libcudart.so.13', 'libcurand.so.10');
    m.lib(join(m.nvidiaDir, 'cudnn/lib'), 'libcudnn.so.9');
    const { suspect } = cudaReadiness(discover(m), 'launched');
    expect(suspect).toBe(
      'libcublasLt.so.12, libcublas.so.12 and libcudart.so.12 not found — install cuBLAS and the CUDA runtime for CUDA 12 ' +
        `(pip install nvidia-cublas-cu12 nvidia-cuda-runtime-cu12); installed but of another version: libcublasLt.so.13 (${cu13}), libcublas.so.13 (${cu13}), libcudart.so.13 (${cu13})`,
    );
  });

  it('CUDA 13 libraries missing: names the unsuffixed CUDA 13 wheels', () => {
    const m = machine({ provider: 13 });
    m.nvidiaSmi({ version: '580.95.05', cuda: '13.0' });
    m.lib('usr/lib/x86_64-linux-gnu', 'libcuda.so.1');
    expect(cudaReadiness(discover(m), 'launched').suspect).toBe(
      'libcublasLt.so.13, libcublas.so.13, libcurand.so.10, libcudart.so.13 and libcudnn.so.9 not found — install cuBLAS, cuRAND, the CUDA runtime and cuDNN for CUDA 13 ' +
        '(pip install nvidia-cublas==13.* nvidia-curand nvidia-cuda-runtime==13.* nvidia-cudnn-cu13)',
    );
  });

  it("a driver too old for the provider's CUDA version: says which driver it needs", () => {
    const m = machine({ provider: 13 });
    const { driver } = colab(m); // Colab's driver runs CUDA 12.4
    const d = discover(m, { LD_LIBRARY_PATH: driver });
    expect(cudaReadiness(d, 'launched').suspect).toMatch(
      /^the CUDA provider is built for CUDA 13, which needs NVIDIA driver 580\.65\.06 or newer; this driver \(550\.54\.15\) runs CUDA 12\.4 at most — update the NVIDIA driver; /,
    );
  });

  it('the driver library missing although nvidia-smi runs', () => {
    const m = machine({ provider: 12 });
    colab(m); // but /usr/lib64-nvidia is not on LD_LIBRARY_PATH: found off the path, so the launcher adds it
    const d = discover(m);
    expect(d.addDirs).toContain(join(m.root, 'usr/lib64-nvidia'));
    rmSync(join(m.root, 'usr/lib64-nvidia'), { recursive: true });
    expect(cudaReadiness(discover(m), 'launched').suspect).toMatch(/^libcuda\.so\.1 \(the NVIDIA driver's CUDA library\) not found — reinstall the NVIDIA driver/);
  });

  it('no NVIDIA driver: says so, before anything about the provider', () => {
    const m = machine();
    expect(cudaReadiness(discover(m), 'launched')).toEqual({ blocked: 'no NVIDIA driver on this machine' });
    expect(formatCudaReport(discover(m))).toContain('NVIDIA driver: none (no nvidia-smi, no libcuda.so.1)');
  });

  it('a driver that does not answer: quotes nvidia-smi', () => {
    const m = machine({ provider: 12 });
    m.nvidiaSmi('broken');
    expect(cudaReadiness(discover(m), 'launched').blocked).toBe(
      "the NVIDIA driver is not working (nvidia-smi: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.)",
    );
  });

  it('the provider not installed: tells to run setup.sh --gpu', () => {
    const m = machine();
    m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' });
    expect(cudaReadiness(discover(m), 'launched')).toEqual({ blocked: "onnxruntime-node's CUDA provider is not installed — run bash scripts/setup.sh --gpu" });
    expect(cudaLibraryEnv(m.env())).toEqual({});
  });

  it('not Linux x64: no CUDA provider at all', () => {
    const m = machine({ provider: 12 });
    const d = discoverCuda({ ...searchOptionsFromEnv(m.env()), platform: 'darwin/arm64' });
    expect(cudaReadiness(d, 'process')).toEqual({ blocked: 'onnxruntime-node has a CUDA provider for Linux x64 only (this is darwin/arm64)' });
  });
});
