// Fake GPU machines in a temp directory for the CUDA discovery tests: an onnxruntime CUDA
// provider that is a real (tiny) ELF file with the DT_NEEDED entries of the real ones, empty
// library files named as NVIDIA ships them, pip and toolkit layouts, and an nvidia-smi script.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { afterEach } from 'vitest';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A minimal 64-bit little-endian ELF file: header, .dynstr, .dynamic and their section headers. */
export function writeFakeElf(path: string, needed: string[]): void {
  const names = Buffer.from(`\0${needed.join('\0')}\0`);
  const offsets: number[] = [];
  let at = 1;
  for (const n of needed) {
    offsets.push(at);
    at += Buffer.byteLength(n) + 1;
  }
  const dynamic = Buffer.alloc((needed.length + 1) * 16);
  needed.forEach((_, i) => {
    dynamic.writeBigInt64LE(1n, i * 16); // DT_NEEDED
    dynamic.writeBigUInt64LE(BigInt(offsets[i]!), i * 16 + 8);
  });
  const strOff = 64;
  const dynOff = strOff + names.length;
  const shOff = dynOff + dynamic.length;
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // 64-bit
  header[5] = 1; // little-endian
  header[6] = 1;
  header.writeUInt16LE(3, 0x10); // ET_DYN
  header.writeUInt16LE(62, 0x12); // x86-64
  header.writeBigUInt64LE(BigInt(shOff), 0x28);
  header.writeUInt16LE(64, 0x34);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(3, 0x3c);
  const sections = Buffer.alloc(3 * 64);
  const section = (i: number, type: number, offset: number, size: number, link: number) => {
    sections.writeUInt32LE(type, i * 64 + 4);
    sections.writeBigUInt64LE(BigInt(offset), i * 64 + 24);
    sections.writeBigUInt64LE(BigInt(size), i * 64 + 32);
    sections.writeUInt32LE(link, i * 64 + 40);
  };
  section(1, 3, strOff, names.length, 0); // SHT_STRTAB
  section(2, 6, dynOff, dynamic.length, 1); // SHT_DYNAMIC → .dynstr
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.concat([header, names, dynamic, sections]));
}

/** The CUDA libraries in the DT_NEEDED list of onnxruntime's CUDA provider (1.29.0, readelf -d), per CUDA major. */
export function providerNeeds(cuda: 12 | 13): string[] {
  return [`libcublasLt.so.${cuda}`, `libcublas.so.${cuda}`, 'libcurand.so.10', `libcudart.so.${cuda}`, 'libcuda.so.1', 'libdl.so.2', 'libstdc++.so.6', 'libc.so.6'];
}

export interface FakeCard {
  name: string;
  /** "7.5" */
  cc: string;
  memoryMiB: number;
  usedMiB?: number;
}

/** The cards of the machines users rent, as nvidia-smi names them. */
export const CARDS = {
  t4: { name: 'Tesla T4', cc: '7.5', memoryMiB: 15360 },
  v100: { name: 'Tesla V100-SXM2-16GB', cc: '7.0', memoryMiB: 16384 },
  l4: { name: 'NVIDIA L4', cc: '8.9', memoryMiB: 23034 },
  a100: { name: 'NVIDIA A100-SXM4-40GB', cc: '8.0', memoryMiB: 40960 },
  h100: { name: 'NVIDIA H100 80GB HBM3', cc: '9.0', memoryMiB: 81559 },
  k80: { name: 'Tesla K80', cc: '3.7', memoryMiB: 11441 },
} satisfies Record<string, FakeCard>;

/** The shell script of a fake nvidia-smi (see FakeMachine.nvidiaSmi). */
function nvidiaSmiScript(driver: { version: string; cuda: string; noComputeCap?: boolean }, cards: FakeCard[]): string {
  const rows = cards.map((c, i) => `card ${i} '${c.name}' ${driver.version} ${c.cc} ${c.memoryMiB} ${c.usedMiB ?? 0} ${c.memoryMiB - (c.usedMiB ?? 0)}`).join('\n');
  return `q=""; units=0
for a in "$@"; do case "$a" in --query-gpu=*) q="\${a#--query-gpu=}";; --format=*nounits*) units=1;; esac; done
if [ -z "$q" ]; then
cat <<'BANNER'
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI ${driver.version}             Driver Version: ${driver.version}     CUDA Version: ${driver.cuda}     |
+-----------------------------------------------------------------------------------------+
BANNER
exit 0; fi
card() {
  out=""; old="$IFS"; IFS=,
  for f in $q; do
    case "$f" in
      index) v=$1;; name) v=$2;; driver_version) v=$3;; memory.total) v=$5;; memory.used) v=$6;; memory.free) v=$7;;
      ${driver.noComputeCap ? '' : 'compute_cap) v=$4;;'}
      *) echo "Field "$f" is not a valid field to query." >&2; exit 2;;
    esac
    case "$f" in memory.*) [ $units = 1 ] || v="$v MiB";; esac
    out="\${out:+$out, }$v"
  done
  IFS="$old"; echo "$out"
}
${rows}
`;
}

export interface FakeMachine {
  root: string;
  providerDir: string;
  /** site-packages/nvidia */
  nvidiaDir: string;
  /** Empty library files (and their symlink-free names) at `root + dir`. */
  lib(dir: string, ...names: string[]): string;
  /**
   * nvidia-smi printing this driver's banner without arguments and answering
   * `--query-gpu=<fields> --format=csv,noheader[,nounits]` for these cards (default: one T4);
   * 'broken': a script that fails as it does when the driver is not loaded.
   */
  nvidiaSmi(driver: { version: string; cuda: string; noComputeCap?: boolean } | 'broken', cards?: FakeCard[]): string;
  /** The environment the discovery reads for this machine. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
}

export function fakeMachine(opts: { provider?: 12 | 13 } = {}): FakeMachine {
  const root = mkdtempSync(join(tmpdir(), 'svd-fake-gpu-'));
  const providerDir = join(root, 'ort-bin');
  mkdirSync(providerDir, { recursive: true });
  if (opts.provider) {
    writeFakeElf(join(providerDir, 'libonnxruntime_providers_cuda.so'), providerNeeds(opts.provider));
    writeFakeElf(join(providerDir, 'libonnxruntime_providers_shared.so'), ['libc.so.6']);
  }
  const nvidiaDir = join(root, 'site-packages', 'nvidia');
  mkdirSync(nvidiaDir, { recursive: true });
  let smi = join(root, 'no-nvidia-smi');
  const m: FakeMachine = {
    root,
    providerDir,
    nvidiaDir,
    lib(dir, ...names) {
      const full = dir.startsWith(root) ? dir : join(root, dir);
      mkdirSync(full, { recursive: true });
      for (const n of names) writeFileSync(join(full, n), '');
      return full;
    },
    nvidiaSmi(driver, cards = [CARDS.t4]) {
      smi = join(root, 'bin', 'nvidia-smi');
      mkdirSync(dirname(smi), { recursive: true });
      const body =
        driver === 'broken'
          ? `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit 9`
          : nvidiaSmiScript(driver, cards);
      writeFileSync(smi, `#!/bin/sh\n${body}\n`);
      chmodSync(smi, 0o755);
      return smi;
    },
    env(extra = {}) {
      return {
        PATH: process.env.PATH,
        HOME: join(root, 'home'),
        SVD_SYSTEM_ROOT: root,
        SVD_CUDA_NVIDIA_DIRS: nvidiaDir,
        SVD_ORT_PROVIDER_DIR: providerDir,
        SVD_NVIDIA_SMI: smi,
        ...extra,
      };
    },
  };
  return m;
}

/** Fake machines made in a test file, removed after each test: `const machine = fakeMachines();`. */
export function fakeMachines(): (opts?: Parameters<typeof fakeMachine>[0]) => FakeMachine {
  const made: FakeMachine[] = [];
  afterEach(() => {
    for (const m of made.splice(0)) rmSync(m.root, { recursive: true, force: true });
  });
  return (opts = {}) => {
    const m = fakeMachine(opts);
    made.push(m);
    return m;
  };
}
