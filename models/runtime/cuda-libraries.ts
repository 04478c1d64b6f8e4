// Finds the libraries onnxruntime's CUDA provider needs where GPU machines keep them: on the
// loader's path (system CUDA, the ldconfig cache, LD_LIBRARY_PATH), in a CUDA toolkit under
// /usr/local/cuda*, or in the pip `nvidia-*` packages of an installed PyTorch (Colab's case).
// What the provider needs is read from the provider file itself (its DT_NEEDED entries), so a
// provider built for CUDA 12 asks for libcublas.so.12 and one built for CUDA 13 for
// libcublas.so.13: onnxruntime-node's `--onnxruntime-node-install=cuda12` fetches NuGet's
// Microsoft.ML.OnnxRuntime.Gpu.Linux, which onnxruntime builds for CUDA 13 since CUDA 12 was
// deprecated (1.27); its 1.29.0 provider links libcudart.so.13.
//
// Before the provider is installed, the libraries the runtime chosen for this machine will need
// are looked for instead (CUDA_LIBRARIES), so `svd doctor` can say what is missing up front.
//
// Test hooks (environment, all optional): SVD_SYSTEM_ROOT (prefix of every fixed system path; the
// ldconfig cache is skipped), SVD_CUDA_NVIDIA_DIRS (the pip nvidia package directories, instead
// of asking python3), SVD_ORT_PROVIDER_DIR (where the provider files are), SVD_NVIDIA_SMI (the
// nvidia-smi command).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readElfDynamic } from './elf-needed.js';
import { filesIn, LoaderPath, splitPath } from './library-search.js';
import { activeOnnxruntimePackage, nativeDir, PROVIDER_FILE, SHARED_PROVIDER_FILE } from './onnxruntime-package.js';
import { nvidiaSmiCommand, queryGpus, type GpuInventory } from './nvidia-smi.js';
import type { CudaMajor } from './runtime-choice.js';

export interface CudaSearchOptions {
  root: string;
  /** site-packages/nvidia directories; undefined: ask python3. */
  nvidiaDirs: string[] | undefined;
  /** onnxruntime-node's native library directory for this platform. */
  providerDir: string;
  nvidiaSmi: string;
  /** This process's LD_LIBRARY_PATH. */
  ldLibraryPath: string | undefined;
  /** `${process.platform}/${process.arch}` */
  platform: string;
}

export function searchOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): CudaSearchOptions {
  const platform = `${process.platform}/${process.arch}`;
  return {
    root: env.SVD_SYSTEM_ROOT ?? '',
    nvidiaDirs: env.SVD_CUDA_NVIDIA_DIRS === undefined ? undefined : splitPath(env.SVD_CUDA_NVIDIA_DIRS),
    providerDir: env.SVD_ORT_PROVIDER_DIR || nativeDir(activeOnnxruntimePackage(env), platform),
    nvidiaSmi: nvidiaSmiCommand(env),
    ldLibraryPath: env.LD_LIBRARY_PATH,
    platform,
  };
}

/** The driver's own library: comes with the NVIDIA driver, never from pip. */
const DRIVER_LIBRARY = 'libcuda.so.1';
/**
 * cuDNN is opened with dlopen at run time (not in DT_NEEDED since onnxruntime 1.2x) but every
 * convolution needs it; onnxruntime's GPU builds since 1.19 use cuDNN 9.
 */
const CUDNN = 'libcudnn.so.9';

/** NVIDIA's minimum Linux driver for each CUDA major version (CUDA toolkit release notes, table 3). */
const MIN_DRIVER: Record<number, string> = { 11: '450.80.02', 12: '525.60.13', 13: '580.65.06' };

/**
 * What a CUDA provider of each major will need before it is installed to be read: the CUDA
 * libraries in 1.29.0's DT_NEEDED (readelf -d), with the major number of the build. Once the
 * provider is there its own DT_NEEDED list is read instead.
 */
export const CUDA_LIBRARIES: Record<CudaMajor, string[]> = {
  '12': ['libcublasLt.so.12', 'libcublas.so.12', 'libcurand.so.10', 'libcudart.so.12', DRIVER_LIBRARY],
  '13': ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13', DRIVER_LIBRARY],
};

export interface FoundLibrary {
  soname: string;
  /** Where it is: on the loader's path, or off it (then its directory is in `addDirs`). */
  path?: string;
  onLoaderPath: boolean;
  /** Installed versions of the same library with another major number (e.g. libcublas.so.13 for .so.12). */
  otherVersions: string[];
}

export interface CudaDiscovery {
  /** onnxruntime-node has a CUDA provider for this platform (Linux x64). */
  supported: boolean;
  platform: string;
  providerDir: string;
  /** Undefined: the provider is not installed. */
  provider?: { dir: string; cudaMajor?: number; needed: string[] };
  /** Undefined when not asked for. */
  driver?: { present: boolean; version?: string; cudaVersion?: string; error?: string; libcuda?: string };
  libraries: FoundLibrary[];
  /** Directories to add to LD_LIBRARY_PATH so that every library above loads. */
  addDirs: string[];
  /** Where the pip nvidia packages were looked for. */
  nvidiaDirs: string[];
}

/** `libcublasLt.so.12` → { stem: 'libcublasLt', major: 12 } */
function splitSoname(soname: string): { stem: string; major: number } | undefined {
  const m = /^(.+)\.so\.(\d+)$/.exec(soname);
  return m ? { stem: m[1]!, major: Number(m[2]) } : undefined;
}

/** The CUDA and driver libraries among a provider's DT_NEEDED entries (not glibc, libstdc++ nor onnxruntime's own). */
function cudaLibrariesOf(needed: string[]): string[] {
  return needed.filter((n) => /^lib(cu|nv)[A-Za-z_]*\.so\.\d+$/.test(n));
}

/** site-packages/nvidia of the python3 on PATH (PyTorch's pip CUDA libraries); empty when there is none. */
function pythonNvidiaDirs(): string[] {
  try {
    const out = execFileSync('python3', ['-c', 'import os, nvidia; print(os.pathsep.join(nvidia.__path__))'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 20_000,
    });
    return splitPath(out.trim());
  } catch {
    return [];
  }
}

/** Library directories off the loader's path where GPU machines keep CUDA: pip packages first, then toolkits. */
function candidateDirs(opts: CudaSearchOptions, nvidiaDirs: string[]): string[] {
  const dirs: string[] = [];
  for (const nv of nvidiaDirs) {
    // CUDA 12 wheels: nvidia/<package>/lib; CUDA 13 wheels: nvidia/cu13/lib (cuDNN keeps nvidia/cudnn/lib).
    for (const [, path] of filesIn(nv)) for (const lib of ['lib', 'lib64']) if (existsSync(join(path, lib))) dirs.push(join(path, lib));
  }
  const local = `${opts.root}/usr/local`;
  const toolkits = [...filesIn(local)]
    .filter(([name]) => /^cuda(-\d+(\.\d+)*)?$/.test(name))
    .sort(([a], [b]) => (a === 'cuda' ? -1 : b === 'cuda' ? 1 : b.localeCompare(a, undefined, { numeric: true })));
  for (const [, path] of toolkits) for (const sub of ['lib64', 'lib', 'targets/x86_64-linux/lib']) dirs.push(join(path, sub));
  // Colab's and NVIDIA containers' driver libraries (libcuda.so.1).
  dirs.push(`${opts.root}/usr/lib64-nvidia`, `${opts.root}/usr/local/nvidia/lib64`, `${opts.root}/usr/local/nvidia/lib`);
  return dirs.filter((d) => existsSync(d));
}

/** The driver part of an nvidia-smi reading; "not found" is no error, only the absence of a driver. */
function driverOf(inv: GpuInventory): { present: boolean; version?: string; cudaVersion?: string; error?: string } {
  if (!inv.driverPresent) return { present: false, ...(inv.error && !inv.error.startsWith('nvidia-smi not found') ? { error: inv.error } : {}) };
  return { present: true, version: inv.driverVersion, cudaVersion: inv.cudaVersion };
}

/** A provider file that cannot be read (truncated download) needs nothing we can name: onnxruntime will say more. */
function readNeeded(path: string): string[] {
  try {
    return readElfDynamic(path)?.needed ?? [];
  } catch {
    return [];
  }
}

/**
 * Finds the provider, the driver and every library the provider needs (or, before it is
 * installed, the libraries a provider for CUDA `expect` will need). `driver: false` skips
 * nvidia-smi (the launcher only needs library directories); an inventory already read is used as
 * it is. Cheap when everything is on the loader's path: python3 is asked only for a library that is not.
 */
export function discoverCuda(opts: CudaSearchOptions = searchOptionsFromEnv(), { driver = true, expect }: { driver?: boolean | GpuInventory; expect?: CudaMajor } = {}): CudaDiscovery {
  const supported = opts.platform === 'linux/x64';
  const out: CudaDiscovery = { supported, platform: opts.platform, providerDir: opts.providerDir, libraries: [], addDirs: [], nvidiaDirs: [] };
  if (!supported) return out;
  const loader = new LoaderPath({ root: opts.root, ldLibraryPath: opts.ldLibraryPath });

  const providerPath = join(opts.providerDir, PROVIDER_FILE);
  let required: string[] = [];
  if (existsSync(providerPath) && existsSync(join(opts.providerDir, SHARED_PROVIDER_FILE))) {
    const needed = readNeeded(providerPath);
    const cuda = cudaLibrariesOf(needed);
    const sonames = needed.map(splitSoname);
    const major = (sonames.find((s) => s?.stem === 'libcudart') ?? sonames.find((s) => s?.stem === 'libcublas'))?.major;
    out.provider = { dir: opts.providerDir, cudaMajor: major, needed: cuda };
    required = [...cuda.filter((n) => n !== CUDNN), CUDNN];
  } else if (expect) {
    required = [...CUDA_LIBRARIES[expect], CUDNN];
  }
  if (driver) {
    const d = driverOf(driver === true ? queryGpus({ ...process.env, SVD_NVIDIA_SMI: opts.nvidiaSmi }) : driver);
    const libcuda = loader.find(DRIVER_LIBRARY);
    out.driver = { ...d, libcuda, present: d.present || (!d.error && !!libcuda) };
  }
  if (required.length === 0) return out;

  let candidates: string[] | undefined;
  const offPath = () => {
    if (!candidates) {
      out.nvidiaDirs = opts.nvidiaDirs ?? pythonNvidiaDirs();
      candidates = candidateDirs(opts, out.nvidiaDirs);
    }
    return candidates;
  };
  const cudaMajor = out.provider?.cudaMajor ?? (expect ? Number(expect) : undefined);
  for (const soname of required) {
    const found: FoundLibrary = { soname, onLoaderPath: false, otherVersions: [] };
    found.path = loader.find(soname);
    if (found.path) found.onLoaderPath = true;
    else {
      const dir = offPath().find((d) => existsSync(join(d, soname)) && !pipBuildForOtherCuda(d, soname, cudaMajor));
      if (dir) {
        found.path = join(dir, soname);
        if (!out.addDirs.includes(dir)) out.addDirs.push(dir);
      }
    }
    if (!found.path) {
      const pipOther = offPath().find((d) => existsSync(join(d, soname)));
      found.otherVersions = pipOther ? [`${soname} for CUDA ${pipBuildForOtherCuda(pipOther, soname, cudaMajor)} (${pipOther})`] : otherVersions(soname, loader, offPath());
    }
    out.libraries.push(found);
  }
  return out;
}

/**
 * cuDNN keeps its soname (libcudnn.so.9) across CUDA majors: in PyTorch's pip layout the wheel's
 * name tells which CUDA it was built for (site-packages/nvidia_cudnn_cu12-….dist-info). The other
 * major's number where `dir` holds such a build for a CUDA other than `cuda`; else undefined.
 */
function pipBuildForOtherCuda(dir: string, soname: string, cuda: number | undefined): number | undefined {
  if (cuda === undefined || !soname.startsWith('libcudnn')) return undefined;
  const m = /^(.*)\/nvidia\/cudnn\/lib$/.exec(dir);
  if (!m) return undefined;
  const builds = [...filesIn(m[1]!)]
    .map(([name]) => /^nvidia_cudnn_cu(\d+)-.*\.dist-info$/.exec(name)?.[1])
    .filter((v): v is string => !!v)
    .map(Number);
  return builds.length && !builds.includes(cuda) ? builds[0] : undefined;
}

/** Installed files `stem.so.N` with another major number N, for "you have CUDA 13's, it needs 12". */
function otherVersions(soname: string, loader: LoaderPath, dirs: string[]): string[] {
  const want = splitSoname(soname);
  if (!want) return [];
  const seen = new Map<string, string>();
  const consider = (name: string, path: string) => {
    const s = splitSoname(name);
    if (s && s.stem === want.stem && s.major !== want.major && !seen.has(name)) seen.set(name, path);
  };
  for (const [name, path] of loader.names()) consider(name, path);
  for (const dir of dirs) for (const [name, path] of filesIn(dir)) consider(name, path);
  return [...seen].map(([name, path]) => `${name} (${dirname(path)})`);
}

/** The environment additions that let the CUDA provider load in a process started with them (for forks and re-executions). */
export function cudaLibraryEnv(env: NodeJS.ProcessEnv = process.env): { LD_LIBRARY_PATH?: string } {
  const opts = searchOptionsFromEnv(env);
  if (opts.platform !== 'linux/x64' || !existsSync(join(opts.providerDir, PROVIDER_FILE))) return {};
  const d = discoverCuda(opts, { driver: false });
  if (d.addDirs.length === 0) return {};
  return { LD_LIBRARY_PATH: [...splitPath(env.LD_LIBRARY_PATH), ...d.addDirs].join(':') };
}

const LIBRARY_NAMES: Record<string, string> = {
  libcublas: 'cuBLAS',
  libcublasLt: 'cuBLAS',
  libcudart: 'the CUDA runtime',
  libcurand: 'cuRAND',
  libcufft: 'cuFFT',
  libcudnn: 'cuDNN',
  libnvrtc: 'NVRTC',
  libnvJitLink: 'nvJitLink',
};

/** The pip package that ships a library for a CUDA major version (CUDA 13's component wheels dropped the -cuNN suffix). */
function pipPackage(stem: string, cuda: number): string | undefined {
  const suffixed = (name: string) => (cuda >= 13 ? `${name}==${cuda}.*` : `${name}-cu${cuda}`);
  switch (stem) {
    case 'libcublas':
    case 'libcublasLt':
      return suffixed('nvidia-cublas');
    case 'libcudart':
      return suffixed('nvidia-cuda-runtime');
    case 'libcurand':
      return cuda >= 13 ? 'nvidia-curand' : `nvidia-curand-cu${cuda}`;
    case 'libcufft':
      return cuda >= 13 ? 'nvidia-cufft' : `nvidia-cufft-cu${cuda}`;
    case 'libnvrtc':
      return suffixed('nvidia-cuda-nvrtc');
    case 'libnvJitLink':
      return suffixed('nvidia-nvjitlink');
    case 'libcudnn':
      return `nvidia-cudnn-cu${cuda}`;
    default:
      return undefined;
  }
}

function listWords(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** What to install for each library not found, with the exact command; empty when all are there. */
export function missingLibraries(libraries: FoundLibrary[], cuda: number): string[] {
  const problems: string[] = [];
  if (libraries.some((l) => l.soname === DRIVER_LIBRARY && !l.path)) {
    problems.push(`${DRIVER_LIBRARY} (the NVIDIA driver's CUDA library) not found — reinstall the NVIDIA driver, or add the directory that holds it to LD_LIBRARY_PATH`);
  }
  const missing = libraries.filter((l) => !l.path && l.soname !== DRIVER_LIBRARY);
  if (missing.length) {
    const packages = [...new Set(missing.map((l) => pipPackage(splitSoname(l.soname)!.stem, cuda)).filter((p): p is string => !!p))];
    const names = [...new Set(missing.map((l) => LIBRARY_NAMES[splitSoname(l.soname)!.stem] ?? l.soname))];
    const others = missing.flatMap((l) => l.otherVersions.slice(0, 1));
    problems.push(
      `${listWords(missing.map((l) => l.soname))} not found — install ${listWords(names)} for CUDA ${cuda}` +
        (packages.length ? ` (pip install ${packages.join(' ')})` : '') +
        (others.length ? `; installed but of another version: ${others.join(', ')}` : ''),
    );
  }
  return problems;
}

export interface CudaReadiness {
  /** Certain: CUDA cannot run here, so onnxruntime need not even be tried. */
  blocked?: string;
  /** The likely cause should CUDA fail to start (missing libraries, an old driver); onnxruntime is still tried. */
  suspect?: string;
}

/**
 * What stands between this machine and the CUDA provider, in words a user can act on.
 * `scope` 'process': libraries off this process's loader path count as missing (what matters
 * in-process); 'launched': they count as found, since the launcher adds their directories.
 */
export function cudaReadiness(d: CudaDiscovery, scope: 'process' | 'launched'): CudaReadiness {
  if (!d.supported) return { blocked: `onnxruntime-node has a CUDA provider for Linux x64 only (this is ${d.platform})` };
  if (d.driver && !d.driver.present) {
    return { blocked: d.driver.error ? `the NVIDIA driver is not working (nvidia-smi: ${d.driver.error})` : 'no NVIDIA driver on this machine' };
  }
  if (!d.provider) return { blocked: "onnxruntime-node's CUDA provider is not installed — run bash scripts/setup.sh --gpu" };
  const cuda = d.provider.cudaMajor;
  const problems: string[] = [];
  const driverCuda = d.driver?.cudaVersion ? Number(d.driver.cudaVersion.split('.')[0]) : undefined;
  if (cuda !== undefined && driverCuda !== undefined && driverCuda < cuda) {
    const min = MIN_DRIVER[cuda];
    problems.push(
      `the CUDA provider is built for CUDA ${cuda}, which needs NVIDIA driver ${min ? `${min} or newer` : `for CUDA ${cuda}`}; this driver (${d.driver!.version ?? 'unknown version'}) runs CUDA ${d.driver!.cudaVersion} at most — update the NVIDIA driver`,
    );
  }
  problems.push(...missingLibraries(d.libraries, cuda ?? 12));
  const offPath = scope === 'process' ? d.libraries.filter((l) => l.path && !l.onLoaderPath) : [];
  if (offPath.length) {
    problems.push(
      `${listWords(offPath.map((l) => l.soname))} ${offPath.length > 1 ? 'are' : 'is'} installed (${listWords([...new Set(offPath.map((l) => dirname(l.path!)))])}) but not on this process's library path — start through npm start or npm run svd, which add it, or add it to LD_LIBRARY_PATH`,
    );
  }
  return problems.length ? { suspect: problems.join('; ') } : {};
}

/** Several lines: the provider, the driver and where each library is (setup.sh and --verbose show it). */
export function formatCudaReport(d: CudaDiscovery): string {
  if (!d.supported) return `CUDA provider: not available for ${d.platform} (onnxruntime-node ships it for Linux x64 only)`;
  const lines: string[] = [];
  if (d.driver) {
    lines.push(
      d.driver.present
        ? `NVIDIA driver: ${d.driver.version ?? `present (${d.driver.libcuda})`}${d.driver.cudaVersion ? `, runs CUDA ${d.driver.cudaVersion} at most` : ''}`
        : `NVIDIA driver: ${d.driver.error ? `not working (nvidia-smi: ${d.driver.error})` : 'none (no nvidia-smi, no libcuda.so.1)'}`,
    );
  }
  if (!d.provider) {
    lines.push(`CUDA provider: not installed (no ${PROVIDER_FILE} and ${SHARED_PROVIDER_FILE} in ${d.providerDir})`);
    return lines.join('\n');
  }
  lines.push(`CUDA provider: ${join(d.provider.dir, PROVIDER_FILE)}, built for CUDA ${d.provider.cudaMajor ?? '(unknown)'}; needs ${d.libraries.map((l) => l.soname).join(', ')}`);
  for (const l of d.libraries) {
    const where = l.path
      ? `${dirname(l.path)}${l.onLoaderPath ? '' : ' (added to LD_LIBRARY_PATH by the launcher)'}`
      : `NOT FOUND${l.otherVersions.length ? ` (other versions: ${l.otherVersions.join(', ')})` : ''}`;
    lines.push(`  ${l.soname.padEnd(20)} ${where}`);
  }
  if (d.nvidiaDirs.length) lines.push(`  pip nvidia packages looked at: ${d.nvidiaDirs.join(', ')}`);
  return lines.join('\n');
}
