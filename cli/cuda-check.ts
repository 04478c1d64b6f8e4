// The CUDA step of `bash scripts/setup.sh --gpu` (alone: `bash scripts/setup.sh --gpu-check`):
// says where each library the CUDA provider needs was found, starts the provider once the way
// `npm start` and `npm run svd` will (with the launcher's library path), and exits 1 with what
// to install when CUDA cannot run here.
import { cudaReadiness, discoverCuda, formatCudaReport } from '../models/runtime/cuda-libraries.js';
import { checkCuda, childStarter } from '../models/runtime/provider-check.js';
import { probeModelPath, sessionOptions } from '../models/runtime/runtime.js';

function verdict(ok: boolean, reason?: string): never {
  console.log(ok ? 'CUDA is ready: npm start and npm run svd will use it.' : `CUDA cannot run here yet: ${reason}`);
  process.exit(ok ? 0 : 1);
}

if (process.env.SVD_ORT_PROVIDER_DIR) {
  // A provider elsewhere than onnxruntime-node's own folder (tests' fake layouts) cannot be started.
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
