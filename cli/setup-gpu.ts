// The GPU step of `bash scripts/setup.sh --gpu` (its check alone: `bash scripts/setup.sh --gpu-check`):
// reads the machine (svd doctor's report), fetches the CUDA provider of the onnxruntime build
// chosen for it into that build's package (the CUDA 12 build beside the pinned one where the
// driver or a card calls for it), then says where each library the provider needs was found,
// starts the provider the way `npm start` and `npm run svd` will (the launcher's library path),
// and exits 1 with what to install when CUDA cannot run here.
import { spawnSync } from 'node:child_process';
import { cudaReadiness, discoverCuda, formatCudaReport } from '../models/runtime/cuda-libraries.js';
import { examineMachine, formatDoctor } from '../models/runtime/doctor.js';
import { hasCudaProvider, ONNXRUNTIME_PACKAGE_ENV, packageDir } from '../models/runtime/onnxruntime-package.js';
import { checkCuda, childStarter } from '../models/runtime/provider-check.js';
import { probeModelPath, sessionOptions } from '../models/runtime/runtime.js';

const checkOnly = process.argv.includes('--check-only');

function verdict(ok: boolean, reason?: string): never {
  console.log(ok ? 'CUDA is ready: npm start and npm run svd will use it.' : `CUDA cannot run here yet: ${reason}`);
  process.exit(ok ? 0 : 1);
}

const report = examineMachine();
console.log(formatDoctor(report));
const { runtime } = report;
if (!runtime.cuda) verdict(false, `${report.why[0]}. The app runs on ${runtime.provider === 'webgpu' ? 'WebGPU' : 'the CPU'} instead.`);

// Every process from here on (and the provider probe) looks at the chosen build.
process.env[ONNXRUNTIME_PACKAGE_ENV] = runtime.package;

if (!checkOnly && !process.env.SVD_ORT_PROVIDER_DIR && !hasCudaProvider(runtime.package)) {
  const dir = packageDir(runtime.package);
  if (!dir) verdict(false, `node_modules/${runtime.package} is missing: run bash scripts/setup.sh again`);
  // onnxruntime-node's own installer: its "cuda12" manifest (the name is historical) downloads
  // NuGet's Microsoft.ML.OnnxRuntime.Gpu.Linux of the package's version, whose provider is built
  // for CUDA 12 up to 1.26 and for CUDA 13 since 1.27, and copies the provider files beside it.
  console.log(`downloading onnxruntime ${runtime.onnxruntime}'s CUDA ${runtime.cuda} provider (NuGet, several hundred MB) into node_modules/${runtime.package}…`);
  const install = spawnSync(process.execPath, ['script/install.js'], { cwd: dir, stdio: 'inherit', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'cuda12' } });
  if (install.status !== 0 || !hasCudaProvider(runtime.package)) {
    verdict(false, 'the CUDA provider could not be downloaded (above: why); run bash scripts/setup.sh --gpu again. Without it the app runs on WebGPU or the CPU.');
  }
}

if (process.env.SVD_ORT_PROVIDER_DIR) {
  // A provider elsewhere than the package's own folder (tests' fake layouts) cannot be started.
  const found = discoverCuda();
  console.log(formatCudaReport(found));
  const { blocked, suspect } = cudaReadiness(found, 'launched');
  verdict(!blocked && !suspect, blocked ?? suspect);
} else {
  const result = await checkCuda(
    childStarter(probeModelPath, (p) => sessionOptions(p)),
    process.env,
    'launched',
  );
  if (result.details) console.log(result.details);
  verdict(result.ok, result.reason);
}
