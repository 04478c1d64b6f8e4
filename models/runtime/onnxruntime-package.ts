// Where each onnxruntime-node build lives and which one this process loads. The launcher picks
// the build (runtime-choice.ts) and, where it is not the pinned `onnxruntime-node`, redirects the
// bare specifier `onnxruntime-node` to it for this process and every Node process it starts
// (workers, provider probes), so the engine's code imports `onnxruntime-node` and never knows.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, join } from 'node:path';
import { DEFAULT_PACKAGE } from './runtime-choice.js';

/** Set by the launcher for its own process and its children; read here only. */
export const ONNXRUNTIME_PACKAGE_ENV = 'SVD_ONNXRUNTIME_PACKAGE';

export const PROVIDER_FILE = 'libonnxruntime_providers_cuda.so';
export const SHARED_PROVIDER_FILE = 'libonnxruntime_providers_shared.so';

/** The package this process loads as `onnxruntime-node`. */
export function activeOnnxruntimePackage(env: NodeJS.ProcessEnv = process.env): string {
  return env[ONNXRUNTIME_PACKAGE_ENV] || DEFAULT_PACKAGE;
}

const require = createRequire(import.meta.url);

/** The package's directory (…/node_modules/<name>); undefined where it is not installed. */
export function packageDir(name = activeOnnxruntimePackage()): string | undefined {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/** The onnxruntime version a package carries ("1.26.0"); undefined where it is not installed. */
export function packageVersion(name = activeOnnxruntimePackage()): string | undefined {
  const dir = packageDir(name);
  return dir ? (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version : undefined;
}

/** The main file to `require` (provider probes run in a plain child process). */
export function packageEntry(name = activeOnnxruntimePackage()): string {
  return require.resolve(name);
}

/** The package's native library directory for this platform, where its CUDA provider goes. */
export function nativeDir(name = activeOnnxruntimePackage(), platform = `${process.platform}/${process.arch}`): string {
  const dir = packageDir(name);
  if (!dir) throw new Error(`${name} is not installed: run bash scripts/setup.sh`);
  return join(dir, 'bin', 'napi-v6', platform);
}

/** The package has its CUDA provider files (setup.sh --gpu fetched them). */
export function hasCudaProvider(name: string, platform = `${process.platform}/${process.arch}`): boolean {
  if (!packageDir(name)) return false;
  const dir = nativeDir(name, platform);
  return existsSync(join(dir, PROVIDER_FILE)) && existsSync(join(dir, SHARED_PROVIDER_FILE));
}

/** The module hook that answers `import 'onnxruntime-node'` with another package. */
function hookSource(name: string): string {
  return `export async function resolve(specifier, context, next) {
  if (specifier === 'onnxruntime-node' || specifier.startsWith('onnxruntime-node/')) return next(${JSON.stringify(name)} + specifier.slice('onnxruntime-node'.length), context);
  return next(specifier, context);
}`;
}

const dataUrl = (source: string) => `data:text/javascript,${encodeURIComponent(source)}`;

/**
 * Loads `name` wherever `onnxruntime-node` is imported, in this process (from now on: call it
 * before the engine is imported) and in the Node processes it starts (through NODE_OPTIONS).
 */
export function useOnnxruntimePackage(name: string): void {
  process.env[ONNXRUNTIME_PACKAGE_ENV] = name;
  if (name === DEFAULT_PACKAGE) return;
  const hook = dataUrl(hookSource(name));
  const option = `--import=${dataUrl(`import { register } from 'node:module'; register(${JSON.stringify(hook)});`)}`;
  const options = process.env.NODE_OPTIONS ?? '';
  // A process started with the option (a restarted launcher, a worker) has the hook already.
  if (options.includes(option)) return;
  register(hook);
  process.env.NODE_OPTIONS = [options, option].filter(Boolean).join(' ');
}
