// The one reading of the machine's NVIDIA cards: nvidia-smi, which comes with the driver and needs
// no CUDA library, so the runtime can be chosen before any is installed. Everything that asks
// about the cards (the runtime choice, doctor, setup, the server's --gpus, the memory plan, the
// benchmarks' monitor) goes through here.
import { execFile, execFileSync } from 'node:child_process';

export interface GpuCard {
  /** The CUDA device id. */
  index: number;
  name: string;
  driverVersion: string;
  /** "7.5" for a T4; undefined where the driver is too old to report it. */
  computeCapability?: string;
  memoryTotalMiB: number;
  memoryUsedMiB: number;
  memoryFreeMiB: number;
}

export interface GpuInventory {
  /** nvidia-smi ran and answered (it may still list no card). */
  driverPresent: boolean;
  driverVersion?: string;
  /** The highest CUDA version this driver runs (nvidia-smi's banner). */
  cudaVersion?: string;
  gpus: GpuCard[];
  /** Why nvidia-smi gave no answer: not installed, or its own first line. */
  error?: string;
}

const FIELDS = ['index', 'name', 'driver_version', 'compute_cap', 'memory.total', 'memory.used', 'memory.free'] as const;
/** Drivers before 510 do not know compute_cap: they are asked again without it. */
const FIELDS_OLD_DRIVER = FIELDS.filter((f) => f !== 'compute_cap');

/** The arguments whose output lines `parseNvidiaSmiLine` reads (with `--loop-ms` for a monitor). */
export const NVIDIA_SMI_QUERY = [`--query-gpu=${FIELDS.join(',')}`, '--format=csv,noheader,nounits'] as const;
const OLD_DRIVER_QUERY = [`--query-gpu=${FIELDS_OLD_DRIVER.join(',')}`, '--format=csv,noheader,nounits'] as const;

/** nvidia-smi, or the one SVD_NVIDIA_SMI names (tests' fake machines). */
export function nvidiaSmiCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.SVD_NVIDIA_SMI || 'nvidia-smi';
}

/** One card from a line of `nvidia-smi ${NVIDIA_SMI_QUERY}` (or of the old-driver query); undefined for anything else. */
export function parseNvidiaSmiLine(line: string): GpuCard | undefined {
  const parts = line.split(',').map((p) => p.trim());
  const withCc = parts.length === FIELDS.length;
  if (!withCc && parts.length !== FIELDS_OLD_DRIVER.length) return undefined;
  const [index, name, driverVersion, ...rest] = parts;
  const cc = withCc ? rest.shift() : undefined;
  const [total, used, free] = rest.map(Number);
  const card: GpuCard = {
    index: Number(index),
    name: name!,
    driverVersion: driverVersion!,
    ...(cc && /^\d+\.\d+$/.test(cc) ? { computeCapability: cc } : {}),
    memoryTotalMiB: total!,
    memoryUsedMiB: used!,
    memoryFreeMiB: free!,
  };
  const numbers = [card.index, card.memoryTotalMiB, card.memoryUsedMiB, card.memoryFreeMiB];
  return card.name && numbers.every(Number.isFinite) && (index ?? '') !== '' ? card : undefined;
}

function parseCards(out: string): GpuCard[] {
  return out
    .trim()
    .split('\n')
    .map(parseNvidiaSmiLine)
    .filter((g) => g !== undefined);
}

/** The banner's "Driver Version: X   CUDA Version: Y". */
export function parseNvidiaSmiBanner(out: string): { driverVersion?: string; cudaVersion?: string } {
  return {
    driverVersion: /Driver Version:\s*([\d.]+)/.exec(out)?.[1],
    cudaVersion: /CUDA Version:\s*([\d.]+)/.exec(out)?.[1],
  };
}

/** What nvidia-smi said when it failed, in one line. */
function failure(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { stdout?: string | Buffer; stderr?: string | Buffer };
  if (e.code === 'ENOENT') return 'nvidia-smi not found (no NVIDIA driver installed)';
  return (
    `${e.stdout ?? ''}\n${e.stderr ?? ''}`
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l) ?? e.message
  );
}

/**
 * Every card, the driver and the CUDA version it runs (two nvidia-smi calls; a third on drivers
 * without compute_cap). nvidia-smi is looked for on `env`'s PATH.
 */
export function queryGpus(env: NodeJS.ProcessEnv = process.env, timeoutMs = 15_000): GpuInventory {
  const cmd = nvidiaSmiCommand(env);
  const run = (args: readonly string[]) => execFileSync(cmd, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  let banner: string;
  try {
    banner = run([]);
  } catch (err) {
    return { driverPresent: false, gpus: [], error: failure(err) };
  }
  const { driverVersion, cudaVersion } = parseNvidiaSmiBanner(banner);
  let gpus: GpuCard[] = [];
  try {
    gpus = parseCards(run(NVIDIA_SMI_QUERY));
  } catch {
    try {
      gpus = parseCards(run(OLD_DRIVER_QUERY));
    } catch (err) {
      return { driverPresent: true, driverVersion, cudaVersion, gpus: [], error: failure(err) };
    }
  }
  return { driverPresent: true, driverVersion: driverVersion ?? gpus[0]?.driverVersion, cudaVersion, gpus };
}

/** Every card as nvidia-smi reports it now (index = CUDA device id); empty where there is none. Asynchronous, for servers. */
export function nvidiaGpus(timeoutMs = 5000, cmd = nvidiaSmiCommand()): Promise<GpuCard[]> {
  return new Promise((resolve) => {
    execFile(cmd, NVIDIA_SMI_QUERY, { timeout: timeoutMs }, (err, out) => {
      if (!err) return resolve(parseCards(out ?? ''));
      execFile(cmd, OLD_DRIVER_QUERY, { timeout: timeoutMs }, (err2, out2) => resolve(err2 ? [] : parseCards(out2 ?? '')));
    });
  });
}

/** One card (the first, or card `index`); undefined where there is none. */
export async function nvidiaGpu(timeoutMs = 5000, index?: number): Promise<GpuCard | undefined> {
  const gpus = await nvidiaGpus(timeoutMs);
  return index === undefined ? gpus[0] : gpus.find((g) => g.index === index);
}
