// A first guess at a machine's rates, for the ETA of the first job on a machine never seen: one
// rough row per class of card. Each machine then learns its own rates from its finished jobs
// (eta.ts). The full-size rows come from docs' anchors: the H100 row from this project's runs
// (BENCHMARKS.md), the other cards scaled by their published speed relative to it; the CPU and
// demo rows from demo jobs on a two-core machine. They only have to be the right size.
import { videoFormats } from '../../common/video-formats.js';

/** The stages timed apart; writing each video format is its own (a WebM or GIF takes far longer than an MP4). */
export const STAGES = ['encode', 'sample', 'decode', ...videoFormats] as const;
export type Stage = (typeof STAGES)[number];
/** Milliseconds per unit of work, by stage. */
export type Rates = Record<Stage, number>;

export interface Machine {
  /** The card's name (nvidia-smi), or the CPU's model and core count: what the learned rates are kept under. */
  name: string;
  kind: 'gpu' | 'cpu';
  memoryMiB?: number;
  cores?: number;
  /** The tiny demo model (its networks cost a small fraction of SVD's). */
  demo: boolean;
}

/** SVD on an H100, ms per unit (units: eta.ts workOf). */
const H100 = { encode: 350, sample: 35, decode: 150 };
/** ffmpeg on the CPU, whatever the card: ms per unit of each format. */
const WRITE = { mp4: 60, webm: 150, gif: 150 };

/** How many times slower than an H100 each class of card runs SVD's networks. */
const CARD_CLASSES: { match: RegExp; slower: number }[] = [
  { match: /\b(H100|H200|GH200|B100|B200)\b/i, slower: 1 },
  { match: /\bA100\b/i, slower: 2 },
  { match: /\b(L40S?|RTX 4090|RTX 6000|A6000|RTX 3090)\b/i, slower: 3 },
  { match: /\b(A10G?|L4|V100|RTX 40\d0|RTX 30\d0)\b/i, slower: 5 },
  { match: /\bT4\b/i, slower: 12 },
];

/** A card not named above, by its memory: bigger cards are the faster generations. */
function slowerByMemory(memoryMiB = 0): number {
  if (memoryMiB >= 40_000) return 3;
  if (memoryMiB >= 20_000) return 5;
  return 12;
}

/** SVD's networks on a CPU, per core (a step of SVD-XT at full size takes tens of minutes on two cores). */
const CPU_SLOWER_PER_CORE = 6000;
/** The demo model on a two-core CPU, ms per unit. */
const DEMO_CPU = { encode: 6000, sample: 700, decode: 2500 };

export function priorRates(m: Machine): Rates {
  if (m.demo) {
    // Its networks are tiny: on any card the time is mostly overhead, so the CPU row is near enough.
    const scale = m.kind === 'cpu' ? 2 / Math.max(1, m.cores ?? 2) : 0.5;
    return { encode: DEMO_CPU.encode * scale, sample: DEMO_CPU.sample * scale, decode: DEMO_CPU.decode * scale, ...WRITE };
  }
  const slower = m.kind === 'cpu' ? CPU_SLOWER_PER_CORE / Math.max(1, m.cores ?? 1) : (CARD_CLASSES.find((c) => c.match.test(m.name))?.slower ?? slowerByMemory(m.memoryMiB));
  return { encode: H100.encode * slower, sample: H100.sample * slower, decode: H100.decode * slower, ...WRITE };
}
