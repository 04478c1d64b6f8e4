// How a job is laid out on a GPU of a given free memory: the guidance batch run joint or split,
// the networks kept open together or opened stage by stage, and the decode chunk. Pure
// arithmetic over per-stage estimates, so it is chosen (and explained) before sampling starts.
// One part of the job planner (job-plan.ts), which every provider's job goes through.

/** Bytes a stage needs beyond its weights, per unit of work, measured on the CUDA provider. */
export interface MemoryEstimates {
  /** CUDA context, cuBLAS/cuDNN handles and workspaces, per process. */
  contextMiB: number;
  /** UNet activations per video · frame · output pixel (fp16), arena slack included. */
  unetBytesPerVideoFramePixel: number;
  /** Temporal decoder activations per frame · output pixel (fp16), arena slack and cuDNN search included. */
  decoderBytesPerFramePixel: number;
  /** CLIP + VAE encoder activations at one image (small next to the weights). */
  encodersActivationMiB: number;
}

/**
 * The CUDA provider, fp16: fitted to the peaks of SVD-XT at 1024x576 x 25 frames on an H100 with
 * all but 15 GiB held (the runs and the onnxruntime build they used: BENCHMARKS.md, CUDA
 * section). The arena grows by powers of two and keeps what it took, so these are peaks as
 * nvidia-smi sees them, not live tensors.
 */
export const CUDA_ESTIMATES: MemoryEstimates = {
  contextMiB: 600,
  unetBytesPerVideoFramePixel: 317,
  decoderBytesPerFramePixel: 6130,
  encodersActivationMiB: 300,
};

/**
 * The CUDA provider with one arena for all sessions (runtime/cuda-arena.ts), which grows by what
 * is asked instead of doubling. The UNet's figure is kept (it overstated the peak measured with all
 * networks open, 25 frames at 1024x576, by about 1 GiB); the decoder's is the most its activations
 * can have needed in that run, decoding 4 frames at a time beside every weight (BENCHMARKS.md,
 * "A 16 GB card: job 2").
 */
export const CUDA_SHARED_ARENA_ESTIMATES: MemoryEstimates = { ...CUDA_ESTIMATES, decoderBytesPerFramePixel: 3510 };

/**
 * 'auto' keeps every network open rather than reopening each stage per job for a larger decoder
 * chunk, unless the chunk would fall below this. With one shared arena the open layout costs
 * only the other stages' weights, and reopening costs seconds every job, so it gives way later.
 */
const MIN_OPEN_CHUNK = { ownArenas: 8, sharedArena: 4 };

export interface JobShape {
  width: number;
  height: number;
  frames: number;
  /** 2 with classifier-free guidance, else 1. */
  videos: 1 | 2;
  /** Frames decoded together; 'auto': the most that fit (up to all of them), as diffusers decodes by default. */
  decodeChunk: number | 'auto';
  /** With 'auto': the most frames the provider can decode at once (its largest tensor), where that is fewer than all. */
  maxDecodeChunk?: number;
}

export interface NetworkWeightsMiB {
  unet: number;
  vae_decoder: number;
  encoders: number;
}

export interface MemoryPlan {
  guidanceBatch: 'joint' | 'split';
  sessions: 'shared' | 'separate';
  decodeChunk: number;
  /**
   * A decoder session per chunk length (25 frames in chunks of 8 end with a chunk of 1): on CUDA
   * a session whose input shape changes pays for each change, every job (BENCHMARKS.md, CUDA attempt 4).
   */
  decoderPerShape: boolean;
  /** Estimated peak of this process, MiB. */
  peakMiB: number;
  /** What was chosen and why, in the user's words (empty when nothing had to give). */
  notes: string[];
}

export class MemoryPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemoryPlanError';
  }
}

const MiB = 2 ** 20;
const gib = (mib: number) => `${(mib / 1024).toFixed(1)} GiB`;

/** The most frames in one decoder chunk that `fits` allows (0 when not even one), up to all of them. */
function largestChunk(frames: number, fits: (chunk: number) => boolean): number {
  let chunk = frames;
  while (chunk > 0 && !fits(chunk)) chunk--;
  return chunk;
}

/**
 * `sharedArena`: every session draws on one arena (cuda-arena.ts), so with everything open the
 * stages' activations do not add up: the card holds every weight and the largest stage's peak.
 */
export function planMemory(budgetMiB: number, job: JobShape, weights: NetworkWeightsMiB, opts: { sharedArena?: boolean } = {}): MemoryPlan {
  const est = opts.sharedArena ? CUDA_SHARED_ARENA_ESTIMATES : CUDA_ESTIMATES;
  const pixels = job.width * job.height;
  const unetAct = (videos: number) => (est.unetBytesPerVideoFramePixel * videos * job.frames * pixels) / MiB;
  const decoderAct = (chunk: number) => (est.decoderBytesPerFramePixel * chunk * pixels) / MiB;
  const auto = job.decodeChunk === 'auto';
  const requested = auto ? Math.min(job.frames, job.maxDecodeChunk ?? job.frames) : Math.max(1, Math.min(job.decodeChunk as number, job.frames));
  const encoders = weights.encoders + est.encodersActivationMiB;

  // Everything open at once: every stage's weights and arena stay on the card between jobs, and a
  // decoder session per chunk length (the full chunk and the last one).
  const sharedPeak = (chunk: number) => {
    const tail = job.frames % chunk;
    if (opts.sharedArena) {
      // The tail's decoder session holds a second copy of the decoder's weights.
      const decoderWeights = weights.vae_decoder * (tail ? 2 : 1);
      return est.contextMiB + weights.encoders + weights.unet + decoderWeights + Math.max(est.encodersActivationMiB, unetAct(job.videos), decoderAct(chunk));
    }
    return est.contextMiB + encoders + weights.unet + unetAct(job.videos) + weights.vae_decoder + decoderAct(chunk) + (tail ? decoderAct(tail) : 0);
  };
  const room = budgetMiB - est.contextMiB;
  const separateFit = Math.min(requested, Math.max(0, Math.floor((room - weights.vae_decoder) / decoderAct(1))));
  const sharedChunk = auto ? largestChunk(requested, (c) => sharedPeak(c) <= budgetMiB) : sharedPeak(requested) <= budgetMiB ? requested : 0;
  if (sharedChunk > 0 && sharedChunk >= Math.min(separateFit, opts.sharedArena ? MIN_OPEN_CHUNK.sharedArena : MIN_OPEN_CHUNK.ownArenas)) {
    return { guidanceBatch: 'joint', sessions: 'shared', decodeChunk: sharedChunk, decoderPerShape: true, peakMiB: Math.round(sharedPeak(sharedChunk)), notes: [] };
  }

  // Stage by stage: only one stage's networks (and arena) on the card at a time.
  const notes = [`${gib(budgetMiB)} of GPU memory to use: opening each stage's networks alone`];
  let guidanceBatch: MemoryPlan['guidanceBatch'] = 'joint';
  let sampling = weights.unet + unetAct(job.videos);
  if (sampling > room && job.videos === 2) {
    guidanceBatch = 'split';
    sampling = weights.unet + unetAct(1);
    notes.push('running the guidance batch one video at a time');
  }
  if (sampling > room) {
    throw new MemoryPlanError(
      `Not enough GPU memory for sampling: the UNet needs about ${gib(sampling + est.contextMiB)} for ${job.frames} frames at ${job.width}x${job.height}, and ${gib(budgetMiB)} is free. Lower the frames or the resolution (for example 14 frames, or 768x448), or free the GPU.`,
    );
  }
  const perFrame = decoderAct(1);
  if (separateFit < 1) {
    throw new MemoryPlanError(
      `Not enough GPU memory for decoding: one frame at ${job.width}x${job.height} needs about ${gib(perFrame + weights.vae_decoder + est.contextMiB)}, and ${gib(budgetMiB)} is free. Lower the resolution, or free the GPU.`,
    );
  }
  const decodeChunk = separateFit;
  if (!auto && decodeChunk < requested) notes.push(`decoding ${decodeChunk} frames at a time instead of ${requested}`);
  const decoding = weights.vae_decoder + decoderAct(decodeChunk);
  const encoding = encoders;
  return {
    guidanceBatch,
    sessions: 'separate',
    decodeChunk,
    decoderPerShape: false,
    peakMiB: Math.round(est.contextMiB + Math.max(sampling, decoding, encoding)),
    notes,
  };
}
