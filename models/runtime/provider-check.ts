// Whether an execution provider can run here, and if not why, in words a user can act on.
// What can be known without onnxruntime is checked first (provider files, NVIDIA driver, CUDA
// libraries, Vulkan driver), so a machine without a GPU never loads a provider and never shows
// onnxruntime's or Vulkan's error output. Where those checks pass, the provider is started in a
// short child process whose output is kept for --verbose: a provider that prints pages of errors,
// hangs or crashes cannot take the caller down with it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { cudaReadiness, discoverCuda, formatCudaReport, searchOptionsFromEnv } from './cuda-libraries.js';
import { filesIn, LoaderPath, splitPath } from './library-search.js';
import { activeOnnxruntimePackage, packageEntry } from './onnxruntime-package.js';

export type GpuProvider = 'cuda' | 'webgpu';

export interface ProviderCheck {
  ok: boolean;
  /** Why it cannot run (one line, no provider name in front). */
  reason?: string;
  /** What was found and what onnxruntime printed, for --verbose. */
  details?: string;
}

/** Starts the provider on a one-node graph in a child process with this environment. */
export type ProviderStarter = (provider: GpuProvider, env: NodeJS.ProcessEnv) => Promise<{ ok: boolean; error?: string; output: string }>;

const PROBE_TIMEOUT_MS = 90_000;

/** onnxruntime's messages carry source locations and call signatures; keep what a user reads. */
export function plainOrtMessage(message: string): string {
  const first = message
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')[0]!
    .trim();
  const cleaned = first
    .replace(/\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/g, '')
    .replace(/\S*onnxruntime_src\S*:\d+\s+/g, '')
    .replace(/^.*?\bwas false\.\s*/, '')
    // a C++ signature (return type, qualified name, arguments) and a template note after it
    .replace(/^[\w:<>,~&*\s]*?::[\w<>~]+\([^)]*\)(?:::<lambda\(\)>)?\s*/, '')
    .replace(/^\[with [^\]]*\]\s*/, '')
    .trim();
  return cleaned || first;
}

/**
 * The probe child: this process's onnxruntime-node build by path (works from bundles too, where the package is external),
 * the session options as JSON; prints nothing itself but the error, after a marker.
 */
const PROBE_SCRIPT = `
const ort = require(process.env.SVD_PROBE_ORT);
const [model, options] = [process.argv[1], JSON.parse(process.argv[2])];
(async () => {
  const s = await ort.InferenceSession.create(model, options);
  await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4]) });
  await s.release();
})().then(() => process.exit(0), (e) => {
  process.stderr.write('\\n@@probe-error@@' + String((e && e.message) || e));
  process.exit(3);
});
`;

/** A ProviderStarter running `PROBE_SCRIPT` on the given model with the given session options. */
export function childStarter(modelPath: () => string, options: (provider: GpuProvider) => unknown): ProviderStarter {
  return (provider, env) =>
    new Promise((resolve) => {
      const ortPath = packageEntry(activeOnnxruntimePackage(env));
      const child = spawn(process.execPath, ['-e', PROBE_SCRIPT, modelPath(), JSON.stringify(options(provider))], {
        env: { ...env, SVD_PROBE_ORT: ortPath },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: PROBE_TIMEOUT_MS,
      });
      let output = '';
      child.stdout.on('data', (b: Buffer) => (output += b.toString()));
      child.stderr.on('data', (b: Buffer) => (output += b.toString()));
      child.on('error', (err) => resolve({ ok: false, error: err.message, output }));
      child.on('close', (code, signal) => {
        const clean = output.replace(/\x1b\[[0-9;]*m/g, '');
        const at = clean.lastIndexOf('@@probe-error@@');
        const details = (at >= 0 ? clean.slice(0, at) : clean).trim();
        if (code === 0) resolve({ ok: true, output: details });
        else if (at >= 0) resolve({ ok: false, error: clean.slice(at + '@@probe-error@@'.length).trim(), output: details });
        else if (signal === 'SIGTERM' && child.killed) resolve({ ok: false, error: `it did not start within ${PROBE_TIMEOUT_MS / 1000} s`, output: details });
        else resolve({ ok: false, error: `it crashed while starting (${signal ?? `exit code ${code}`})`, output: details });
      });
    });
}

export async function checkCuda(start: ProviderStarter, env: NodeJS.ProcessEnv = process.env, scope: 'process' | 'launched' = 'process'): Promise<ProviderCheck> {
  const found = discoverCuda(searchOptionsFromEnv(env));
  const report = formatCudaReport(found);
  const readiness = cudaReadiness(found, scope);
  if (readiness.blocked) return { ok: false, reason: readiness.blocked, details: report };
  const probeEnv = scope === 'launched' && found.addDirs.length ? { ...env, LD_LIBRARY_PATH: [...splitPath(env.LD_LIBRARY_PATH), ...found.addDirs].join(':') } : env;
  const run = await start('cuda', probeEnv);
  const details = [report, run.output && `onnxruntime said:\n${run.output}`].filter(Boolean).join('\n');
  if (run.ok) return { ok: true, details };
  return { ok: false, reason: readiness.suspect ?? `the CUDA provider failed to start: ${plainOrtMessage(run.error ?? '')}`, details: `${details}\nerror: ${run.error}` };
}

/**
 * The directories the Vulkan loader reads driver manifests (ICDs) from on Linux, in its order
 * (Vulkan-Loader docs/LoaderDriverInterface.md, "Driver Discovery on Linux"). VK_DRIVER_FILES
 * (or the older VK_ICD_FILENAMES) replaces the search; VK_ADD_DRIVER_FILES adds to it.
 */
export function vulkanDriverFiles(env: NodeJS.ProcessEnv, root = ''): string[] {
  const jsonIn = (p: string): string[] => (p.endsWith('.json') ? [p] : [...filesIn(p)].filter(([n]) => n.endsWith('.json')).map(([, f]) => f));
  const only = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  const added = splitPath(env.VK_ADD_DRIVER_FILES)
    .flatMap(jsonIn)
    .filter((f) => existsSync(f));
  if (only)
    return [
      ...splitPath(only)
        .flatMap(jsonIn)
        .filter((f) => existsSync(f)),
      ...added,
    ];
  const home = env.HOME ?? homedir();
  const dirs = [
    env.XDG_CONFIG_HOME || join(home, '.config'),
    ...splitPath(env.XDG_CONFIG_DIRS || '/etc/xdg').map((d) => root + d),
    `${root}/usr/local/etc`,
    `${root}/etc`,
    env.XDG_DATA_HOME || join(home, '.local/share'),
    ...splitPath(env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').map((d) => root + d),
  ];
  return [...dirs.flatMap((d) => jsonIn(join(d, 'vulkan', 'icd.d'))), ...added];
}

/** WebGPU runs on Vulkan on Linux: without its loader or a driver manifest, onnxruntime finds no adapter. */
export function webgpuBlockedReason(env: NodeJS.ProcessEnv = process.env, root = env.SVD_SYSTEM_ROOT ?? ''): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const loader = new LoaderPath({ root, ldLibraryPath: env.LD_LIBRARY_PATH });
  if (!loader.find('libvulkan.so.1')) return 'the Vulkan loader (libvulkan.so.1) is not installed — apt-get install libvulkan1';
  if (vulkanDriverFiles(env, root).length === 0) {
    return "no Vulkan driver installed — install the GPU's Vulkan driver, or set VK_DRIVER_FILES to its *_icd.json";
  }
  return undefined;
}

export async function checkWebgpu(start: ProviderStarter, env: NodeJS.ProcessEnv = process.env): Promise<ProviderCheck> {
  const root = env.SVD_SYSTEM_ROOT ?? '';
  const blocked = webgpuBlockedReason(env, root);
  if (blocked)
    return {
      ok: false,
      reason: blocked,
      details: 'no Vulkan driver manifest (*.json) in VK_DRIVER_FILES, /etc/vulkan/icd.d, /usr/share/vulkan/icd.d or the other directories the Vulkan loader reads',
    };
  const run = await start('webgpu', env);
  const manifests = process.platform === 'linux' ? `Vulkan driver manifests: ${vulkanDriverFiles(env, root).join(', ')}` : '';
  const details = [manifests, run.output && `onnxruntime said:\n${run.output}`].filter(Boolean).join('\n');
  if (run.ok) return { ok: true, details };
  return { ok: false, reason: `it did not start (${plainOrtMessage(run.error ?? '')})`, details: `${details}\nerror: ${run.error}` };
}
