// The pipeline's worker threads (noise-worker, step-worker) started from wherever this module runs.
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * `name` next to this module, with this module's extension: the compiled .js (dist/), a bundle's
 * .mjs (the GPU machine's .device-build, where package.json's bundle:device builds the workers
 * beside the others), or the TypeScript source (tests, npm run dev), which the thread loads after
 * registering tsx's loader itself (a worker thread of Node 20 does not take --import).
 */
export function startComputeThread(name: 'noise-worker' | 'step-worker'): Worker {
  const here = fileURLToPath(import.meta.url);
  const ext = extname(here);
  const entry = pathToFileURL(join(dirname(here), `${name}${ext}`));
  // None of the parent's Node options: the thread only computes (an option such as --input-type stops it from starting).
  if (ext !== '.ts') return new Worker(entry, { execArgv: [] });
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`, { eval: true, execArgv: [] });
}
