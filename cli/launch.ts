// `node dist/cli/launch.js ENTRY [args…]` (what npm start, npm run svd and setup run on the compiled
// code; `tsx cli/launch.ts ENTRY` for npm run dev and bench, from the sources):
// picks the onnxruntime build this machine runs (models/runtime/runtime-choice.ts: the CUDA 12
// build on Colab's driver 550 and on V100s, where setup.sh --gpu has installed its provider) and
// loads it as `onnxruntime-node` here and in every process started from here;
// runs ENTRY in a process whose library path holds the CUDA libraries onnxruntime's CUDA
// provider needs where they are off the loader's path (PyTorch's pip nvidia packages, a CUDA
// toolkit under /usr/local): the dynamic loader reads LD_LIBRARY_PATH only when a process starts,
// so when directories must be added this process starts again with them, once. Everywhere else
// (no CUDA provider installed, libraries already on the path, not Linux) ENTRY runs right here.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cudaLibraryEnv } from '../models/runtime/cuda-libraries.js';
import { queryGpus } from '../models/runtime/nvidia-smi.js';
import { hasCudaProvider, ONNXRUNTIME_PACKAGE_ENV, useOnnxruntimePackage } from '../models/runtime/onnxruntime-package.js';
import { chooseRuntime, DEFAULT_PACKAGE } from '../models/runtime/runtime-choice.js';

/** Set in the restarted process, so that it never restarts again. */
const RESTARTED = 'SVD_CUDA_LIBRARY_PATH_SET';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node dist/cli/launch.js ENTRY [args…]  (from the sources: tsx cli/launch.ts ENTRY [args…])');
  process.exit(2);
}
if (!existsSync(entry)) {
  console.error(`${entry} does not exist${entry.startsWith('dist') ? ': build svd-studio first (npm run build, or bash scripts/setup.sh)' : ''}`);
  process.exit(2);
}

/** The build to load: decided once per launch (a restarted launcher or a worker inherits it). */
function onnxruntimePackage(): string {
  const decided = process.env[ONNXRUNTIME_PACKAGE_ENV];
  if (decided) return decided;
  if (`${process.platform}/${process.arch}` !== 'linux/x64') return DEFAULT_PACKAGE;
  const choice = chooseRuntime(queryGpus());
  // Without its CUDA provider the other build has nothing to add: the pinned one serves WebGPU and
  // the CPU, and the CUDA check says to run setup.sh --gpu.
  return choice.cuda && hasCudaProvider(choice.packageName) ? choice.packageName : DEFAULT_PACKAGE;
}

function libraryEnv(): { LD_LIBRARY_PATH?: string } {
  try {
    return cudaLibraryEnv();
  } catch (err) {
    // never keep the app from starting: the provider check will say what is wrong with CUDA
    console.error(`warning: could not look for the CUDA libraries: ${(err as Error).message}`);
    return {};
  }
}

useOnnxruntimePackage(onnxruntimePackage());
const add = process.env[RESTARTED] ? {} : libraryEnv();
if (add.LD_LIBRARY_PATH) {
  const env = { ...process.env, ...add, [RESTARTED]: '1' };
  const argv = [...process.execArgv, ...process.argv.slice(1)];
  const execve = (process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve === 'function') execve.call(process, process.execPath, [process.execPath, ...argv], env);
  // Node before 22.15 has no execve: run a child and mirror it. Ctrl-C reaches the child by itself
  // (same process group), so SIGINT is not forwarded, or the child would see it twice.
  const child = spawn(process.execPath, argv, { env, stdio: 'inherit' });
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 1)));
} else {
  const path = resolve(entry);
  process.argv = [process.argv[0]!, path, ...args];
  await import(pathToFileURL(path).href);
}
