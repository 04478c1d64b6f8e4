// Which onnxruntime build each machine gets, decided from nvidia-smi alone: a fake nvidia-smi on
// PATH per machine (the boxes users rent), through `examineMachine` (what `svd doctor`, setup and
// the launcher use) and once through the real `svd doctor --json` command.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { examineMachine, type DoctorReport } from '../models/runtime/doctor.js';
import { parseNvidiaSmiLine, queryGpus } from '../models/runtime/nvidia-smi.js';
import { chooseRuntime, compareVersions } from '../models/runtime/runtime-choice.js';
import { CARDS, fakeMachines, type FakeCard, type FakeMachine } from './fake-cuda.js';

const machine = fakeMachines();
const ROOT = join(import.meta.dirname, '..');

const COLAB_DRIVER = { version: '550.54.15', cuda: '12.4' };
const DRIVER_580 = { version: '580.95.05', cuda: '13.0' };

/** The environment of a process on this machine: its nvidia-smi first on PATH, nothing else of it. */
function pathEnv(m: FakeMachine): NodeJS.ProcessEnv {
  const { SVD_NVIDIA_SMI, ...rest } = m.env();
  return { ...rest, PATH: `${dirname(SVD_NVIDIA_SMI!)}:${process.env.PATH}` };
}

function doctor(driver: Parameters<FakeMachine['nvidiaSmi']>[0] | undefined, cards: FakeCard[] = [CARDS.t4]): DoctorReport {
  const m = machine();
  if (driver) m.nvidiaSmi(driver, cards);
  return examineMachine(pathEnv(m), 'linux/x64');
}

describe('the runtime each machine gets', () => {
  it('Colab T4 (driver 550.54.15, sm_75, 15 GiB): CUDA 12, onnxruntime 1.26.0', () => {
    const r = doctor(COLAB_DRIVER, [CARDS.t4]);
    expect(r.runtime).toEqual({ provider: 'cuda', cuda: '12', onnxruntime: '1.26.0', package: 'onnxruntime-node-cuda12' });
    expect(r.why[0]).toMatch(/driver 550\.54\.15 \(it runs CUDA 12\.4 at most\) is older than 580\.65\.06, which CUDA 13 needs/);
    expect(r.gpus[0]).toMatchObject({ name: 'Tesla T4', computeCapability: '7.5', memoryTotalMiB: 15360, driverVersion: '550.54.15' });
    expect(r.gpus[0]!.notes.join(' ')).toMatch(/no flash attention.*16 GB-class card/);
  });

  it('V100 with driver 580: CUDA 12 (CUDA 13 has no sm_70 code)', () => {
    const r = doctor(DRIVER_580, [CARDS.v100]);
    expect(r.runtime).toMatchObject({ provider: 'cuda', cuda: '12', onnxruntime: '1.26.0' });
    expect(r.why.join(' ')).toMatch(/card 0 \(Tesla V100-SXM2-16GB, sm_70\) is older than sm_75: CUDA 13 has no code for it/);
  });

  it('L4 and A100 with driver 550: CUDA 12', () => {
    for (const card of [CARDS.l4, CARDS.a100]) {
      const r = doctor(COLAB_DRIVER, [card]);
      expect(r.runtime, card.name).toMatchObject({ provider: 'cuda', cuda: '12', onnxruntime: '1.26.0' });
      expect(r.gpus[0]!.notes[0]).toBe('fp16; flash attention');
    }
  });

  it('H100 with driver 580: CUDA 13, the pinned onnxruntime', () => {
    const r = doctor(DRIVER_580, [CARDS.h100]);
    expect(r.runtime).toEqual({ provider: 'cuda', cuda: '13', onnxruntime: '1.30.0', package: 'onnxruntime-node' });
    expect(r.why).toEqual(['NVIDIA driver 580.95.05 (it runs CUDA 13.0 at most) runs CUDA 13 and every card has code in it (NVIDIA H100 80GB HBM3 sm_90)']);
  });

  it('no driver: not CUDA, with the reason', () => {
    const r = doctor(undefined);
    expect(r.runtime.cuda).toBeNull();
    expect(['cpu', 'webgpu']).toContain(r.runtime.provider);
    expect(r.why[0]).toBe('no NVIDIA driver on this machine (no nvidia-smi)');
    expect(r.cuda).toBeUndefined();
  });

  it('a driver that is installed but not loaded: not CUDA, with what nvidia-smi said', () => {
    const r = doctor('broken');
    expect(r.runtime.cuda).toBeNull();
    expect(r.why[0]).toMatch(/^the NVIDIA driver is not working: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
  });

  it('the same rules for machines not in the list', () => {
    // one old card among new ones takes the whole machine to CUDA 12
    expect(doctor(DRIVER_580, [CARDS.h100, CARDS.v100]).runtime.cuda).toBe('12');
    // a driver older than CUDA 12's minimum: no CUDA, and what to update
    const old = doctor({ version: '470.82.01', cuda: '11.4' }, [CARDS.t4]);
    expect(old.runtime.cuda).toBeNull();
    expect(old.why[0]).toMatch(/driver 470\.82\.01 .* older than 525\.60\.13.*update the NVIDIA driver/);
    // a card older than any CUDA build's code
    const k80 = doctor(COLAB_DRIVER, [CARDS.k80]);
    expect(k80.runtime.cuda).toBeNull();
    expect(k80.why[0]).toMatch(/Tesla K80, sm_37.*no code for cards older than sm_60/);
    // a driver too old to report compute capability (asked again without it): not taken for CUDA 13
    const noCc = doctor({ version: '580.95.05', cuda: '13.0', noComputeCap: true }, [CARDS.h100]);
    expect(noCc.gpus[0]!.computeCapability).toBeUndefined();
    expect(noCc.runtime.cuda).toBe('12');
    // an H100 on Colab's driver
    expect(doctor(COLAB_DRIVER, [CARDS.h100]).runtime.cuda).toBe('12');
    // no card listed
    expect(chooseRuntime({ driverPresent: true, driverVersion: '580.95.05', gpus: [] }, 'linux/x64').cuda).toBeNull();
    // not Linux x64
    expect(chooseRuntime({ driverPresent: true, driverVersion: '580.95.05', gpus: [] }, 'linux/arm64').reasons[0]).toMatch(/Linux x64 only/);
  });

  it('says what to do before the CUDA provider and libraries are there', () => {
    const r = doctor(COLAB_DRIVER, [CARDS.t4]);
    expect(r.ready).toBe(false);
    expect(r.cuda?.providerInstalled).toBe(false);
    expect(r.todo[0]).toBe("fetch onnxruntime 1.26.0's CUDA 12 provider: bash scripts/setup.sh --gpu");
    expect(r.cuda?.missing).toEqual(['libcublasLt.so.12', 'libcublas.so.12', 'libcurand.so.10', 'libcudart.so.12', 'libcuda.so.1', 'libcudnn.so.9']);
    expect(r.todo.join('\n')).toMatch(/pip install nvidia-cublas-cu12 nvidia-curand-cu12 nvidia-cuda-runtime-cu12 nvidia-cudnn-cu12/);
  });

  it("finds Colab's CUDA 12 libraries in PyTorch's pip packages", () => {
    const m = machine({ provider: 12 });
    m.nvidiaSmi(COLAB_DRIVER, [CARDS.t4]);
    m.lib('usr/lib64-nvidia', 'libcuda.so.1');
    for (const [pkg, libs] of Object.entries({ cublas: ['libcublas.so.12', 'libcublasLt.so.12'], curand: ['libcurand.so.10'], cuda_runtime: ['libcudart.so.12'], cudnn: ['libcudnn.so.9'] })) {
      m.lib(join(m.nvidiaDir, pkg, 'lib'), ...libs);
    }
    const r = examineMachine({ ...pathEnv(m), LD_LIBRARY_PATH: join(m.root, 'usr/lib64-nvidia') }, 'linux/x64');
    expect(r.cuda).toMatchObject({ providerInstalled: true, providerBuiltFor: 12, missing: [] });
    expect(r).toMatchObject({ ready: true, todo: [] });
  });
});

describe('nvidia-smi', () => {
  it('reads the cards of one query line each', () => {
    expect(parseNvidiaSmiLine('1, NVIDIA H100 80GB HBM3, 580.95.05, 9.0, 81559, 4, 81555')).toEqual({
      index: 1,
      name: 'NVIDIA H100 80GB HBM3',
      driverVersion: '580.95.05',
      computeCapability: '9.0',
      memoryTotalMiB: 81559,
      memoryUsedMiB: 4,
      memoryFreeMiB: 81555,
    });
    expect(parseNvidiaSmiLine('0, Tesla T4, 450.80.02, 15360, 0, 15360')).toMatchObject({ name: 'Tesla T4', memoryFreeMiB: 15360 });
    expect(parseNvidiaSmiLine('0, Tesla T4, 550.54.15, 7.5, [N/A], 0, 0')).toBeUndefined();
    expect(parseNvidiaSmiLine('')).toBeUndefined();
    expect(parseNvidiaSmiLine('No devices were found')).toBeUndefined();
  });

  it('reads driver, CUDA version and every card from a fake on PATH', () => {
    const m = machine();
    m.nvidiaSmi(COLAB_DRIVER, [CARDS.t4, { ...CARDS.t4, usedMiB: 1000 }]);
    const inv = queryGpus(pathEnv(m));
    expect(inv).toMatchObject({ driverPresent: true, driverVersion: '550.54.15', cudaVersion: '12.4' });
    expect(inv.gpus.map((g) => [g.index, g.memoryFreeMiB])).toEqual([
      [0, 15360],
      [1, 14360],
    ]);
  });

  it('compares driver versions by number', () => {
    expect(compareVersions('550.54.15', '580.65.06')).toBe(-1);
    expect(compareVersions('580.159.04', '580.65.06')).toBe(1);
    expect(compareVersions('12.4', '13')).toBe(-1);
    expect(compareVersions('13.0', '13')).toBe(0);
  });
});

describe('svd doctor --json', () => {
  it('prints one JSON object with the runtime (a T4 on Colab)', async () => {
    const m = machine();
    m.nvidiaSmi(COLAB_DRIVER, [CARDS.t4]);
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'svd.ts'), 'doctor', '--json'], { cwd: ROOT, env: pathEnv(m), timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const report = JSON.parse(out) as DoctorReport;
    expect(report.runtime).toEqual({ provider: 'cuda', cuda: '12', onnxruntime: '1.26.0', package: 'onnxruntime-node-cuda12' });
    expect(report.gpus).toHaveLength(1);
  });
});
