// `bash scripts/setup.sh --gpu`'s check step and the launcher behind npm start / npm run svd,
// driven against fake GPU machines; and what a CPU-only run of the CLI prints about providers.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CARDS, fakeMachines, type FakeMachine } from './fake-cuda.js';
import { SMALL_DEMO_JOB } from './helpers.js';

const machine = fakeMachines();

function colab(m: FakeMachine, { cudnn = true, driverCuda = '12.4' } = {}) {
  m.nvidiaSmi({ version: driverCuda.startsWith('13') ? '580.95.05' : '550.54.15', cuda: driverCuda });
  const driver = m.lib('usr/lib64-nvidia', 'libcuda.so.1');
  const pip = [
    m.lib(join(m.nvidiaDir, 'cublas/lib'), 'libcublas.so.12', 'libcublasLt.so.12'),
    m.lib(join(m.nvidiaDir, 'curand/lib'), 'libcurand.so.10'),
    m.lib(join(m.nvidiaDir, 'cuda_runtime/lib'), 'libcudart.so.12'),
  ];
  const cudnnDir = m.lib(join(m.nvidiaDir, 'cudnn/lib'), ...(cudnn ? ['libcudnn.so.9'] : []));
  if (cudnn) pip.push(cudnnDir);
  return { driver, pip };
}

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv) => {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

describe('setup.sh --gpu, its check step', () => {
  it('on a Colab-like machine: finds every library in the pip packages and says CUDA is ready', () => {
    const m = machine({ provider: 12 });
    const { driver, pip } = colab(m);
    const r = run('bash', ['scripts/setup.sh', '--gpu-check'], m.env({ LD_LIBRARY_PATH: driver }));
    expect(r.out).toContain('NVIDIA driver: 550.54.15, runs CUDA 12.4 at most');
    expect(r.out).toContain(
      `CUDA provider: ${m.providerDir}/libonnxruntime_providers_cuda.so, built for CUDA 12; needs libcublasLt.so.12, libcublas.so.12, libcurand.so.10, libcudart.so.12, libcuda.so.1, libcudnn.so.9`,
    );
    expect(r.out).toContain(`libcuda.so.1         ${driver}\n`);
    for (const dir of pip) expect(r.out).toContain(`${dir} (added to LD_LIBRARY_PATH by the launcher)`);
    expect(r.out).toContain('CUDA is ready: npm start and npm run svd will use it.');
    expect(r.code).toBe(0);
  });

  it('missing cuDNN: exits 1 naming the pip package', () => {
    const m = machine({ provider: 12 });
    const { driver } = colab(m, { cudnn: false });
    const r = run('bash', ['scripts/setup.sh', '--gpu-check'], m.env({ LD_LIBRARY_PATH: driver }));
    expect(r.out).toContain('libcudnn.so.9        NOT FOUND');
    expect(r.out).toContain('CUDA cannot run here yet: libcudnn.so.9 not found — install cuDNN for CUDA 12 (pip install nvidia-cudnn-cu12)');
    expect(r.code).toBe(1);
  });

  it("a CUDA 13 provider on a driver that runs CUDA 12: exits 1 asking for a newer driver and CUDA 13's libraries", () => {
    const m = machine({ provider: 13 });
    const { driver } = colab(m);
    const r = run('bash', ['scripts/setup.sh', '--gpu-check'], m.env({ LD_LIBRARY_PATH: driver }));
    expect(r.out).toMatch(
      /CUDA cannot run here yet: the CUDA provider is built for CUDA 13, which needs NVIDIA driver 580\.65\.06 or newer; .*; libcublasLt\.so\.13, libcublas\.so\.13 and libcudart\.so\.13 not found — install cuBLAS and the CUDA runtime for CUDA 13 \(pip install nvidia-cublas==13\.\* nvidia-cuda-runtime==13\.\*\); installed but of another version: libcublasLt\.so\.12/,
    );
    expect(r.code).toBe(1);
  });

  it('no NVIDIA driver: exits 1 saying so', () => {
    const m = machine();
    const r = run('bash', ['scripts/setup.sh', '--gpu-check'], m.env());
    expect(r.out).toContain('CUDA cannot run here yet: no NVIDIA driver on this machine');
    expect(r.code).toBe(1);
  });
});

describe('the launcher (npm start, npm run svd)', () => {
  const entry = (m: FakeMachine) => {
    const path = join(m.root, 'entry.mjs');
    writeFileSync(
      path,
      'console.log(JSON.stringify({ ld: process.env.LD_LIBRARY_PATH ?? null, restarted: process.env.SVD_CUDA_LIBRARY_PATH_SET ?? null, args: process.argv.slice(2) }));\nprocess.exitCode = 7;\n',
    );
    return path;
  };
  const launch = (m: FakeMachine, env: NodeJS.ProcessEnv) => {
    const r = spawnSync('node_modules/.bin/tsx', ['cli/launch.ts', entry(m), 'generate', '--steps', '4'], { env, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, stderr: r.stderr, seen: JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ld: string | null; restarted: string | null; args: string[] } };
  };

  it("restarts once with the pip packages' folders on LD_LIBRARY_PATH, passing arguments and exit code", () => {
    const m = machine({ provider: 12 });
    const { driver, pip } = colab(m);
    const r = launch(m, m.env({ LD_LIBRARY_PATH: driver }));
    expect(r.seen).toEqual({ ld: [driver, ...pip].join(':'), restarted: '1', args: ['generate', '--steps', '4'] });
    expect(r.code).toBe(7);
  });

  it('runs the entry in place where nothing needs adding (no CUDA provider installed)', () => {
    const m = machine();
    m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' });
    const r = launch(m, m.env({ LD_LIBRARY_PATH: '/opt/x' }));
    expect(r.seen).toEqual({ ld: '/opt/x', restarted: null, args: ['generate', '--steps', '4'] });
    expect(r.code).toBe(7);
  });

  it('loads the build chosen for the machine as onnxruntime-node, in its own process and in the Node processes it starts', () => {
    const probe = join(import.meta.dirname, 'print-onnxruntime.mjs');
    const launcher = join(import.meta.dirname, '..', 'cli', 'launch.ts');
    const versions = (env: NodeJS.ProcessEnv) => {
      const r = run(process.execPath, ['--import', 'tsx', launcher, probe], { ...process.env, ...env });
      expect(r.code, r.out).toBe(0);
      return JSON.parse(r.out.trim().split('\n').at(-1)!) as { self: string; child: string };
    };
    // where the CUDA 12 build was chosen (what the launcher decides on Colab once setup.sh --gpu fetched its provider)
    expect(versions({ SVD_ONNXRUNTIME_PACKAGE: 'onnxruntime-node-cuda12' })).toEqual({ self: '1.26.0', child: '1.26.0' });
    // a T4 on Colab's driver before setup.sh --gpu fetched the CUDA 12 provider: the pinned build (WebGPU, CPU)
    const m = machine();
    m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' }, [CARDS.t4]);
    expect(versions({ SVD_ONNXRUNTIME_PACKAGE: '', SVD_NVIDIA_SMI: m.env().SVD_NVIDIA_SMI })).toEqual({ self: '1.30.0', child: '1.30.0' });
  });
});

describe("the server's worker processes", () => {
  it('start with the CUDA library folders on LD_LIBRARY_PATH when the server was not started through the launcher', async () => {
    const { workerEnv } = await import('../server/workers/pool.js');
    const m = machine({ provider: 12 });
    const { driver, pip } = colab(m);
    const saved = { ...process.env };
    try {
      Object.assign(process.env, m.env({ LD_LIBRARY_PATH: driver }));
      expect(workerEnv({ name: 'gpu 0', deviceId: 0 }).LD_LIBRARY_PATH).toBe([driver, ...pip].join(':'));
      process.env.LD_LIBRARY_PATH = [driver, ...pip].join(':'); // started through the launcher: nothing to add
      expect(workerEnv({ name: 'gpu 0', deviceId: 0 }).LD_LIBRARY_PATH).toBe([driver, ...pip].join(':'));
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });
});

describe('a CPU-only run of the CLI', () => {
  const generate = (extra: string[], env: NodeJS.ProcessEnv) => {
    const out = join(mkdtempSync(join(tmpdir(), 'svd-cli-')), 'frames.safetensors');
    try {
      // npm run svd from the sources (test/packaging.test.ts runs the compiled one)
      const r = spawnSync('node_modules/.bin/tsx', ['cli/launch.ts', 'cli/svd.ts', ...SMALL_DEMO_JOB, '--frames-out', out, ...extra], { env, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      return `${r.stdout}${r.stderr}`;
    } finally {
      rmSync(join(out, '..'), { recursive: true, force: true });
    }
  };
  const noise = /\[E:onnxruntime|Failed to load library|vkCreateInstance|onnxruntime_src|\x1b\[/;

  it("prints one plain provider line, none of onnxruntime's or Vulkan's output", () => {
    const out = generate([], process.env);
    const lines = out.split('\n').filter((l) => /provider|CUDA|WebGPU|Vulkan/.test(l) && !l.startsWith('done:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^using provider cpu \(CUDA: [^;]+; WebGPU: .+\)$/);
    expect(out).not.toMatch(noise);
  });

  it('with --verbose, also what each check found', () => {
    const empty = mkdtempSync(join(tmpdir(), 'svd-no-gpu-'));
    try {
      const out = generate(['--verbose'], { ...process.env, SVD_SYSTEM_ROOT: empty, SVD_NVIDIA_SMI: join(empty, 'nvidia-smi'), VK_DRIVER_FILES: join(empty, 'none.json') });
      expect(out).toContain('using provider cpu (CUDA: no NVIDIA driver on this machine; WebGPU: the Vulkan loader (libvulkan.so.1) is not installed — apt-get install libvulkan1)\n');
      expect(out).toContain('CUDA: no NVIDIA driver on this machine\n  NVIDIA driver: none (no nvidia-smi, no libcuda.so.1)\n  CUDA provider: not installed');
      expect(out).not.toMatch(noise);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
