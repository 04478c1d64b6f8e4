// Progress as the pipeline reports it, and as a job carries it to the page (which adds the queue
// and the writing of the files around the pipeline's stages).

export type GenerationProgress =
  | { stage: 'loading'; message: string }
  | { stage: 'encoding' }
  | { stage: 'sampling'; step: number; steps: number; elapsedMs: number; etaMs: number }
  | { stage: 'decoding'; chunk: number; chunks: number }
  | { stage: 'done'; elapsedMs: number };

/** Which of a job's segments (the extend setting) a stage belongs to; absent for a single clip. */
export interface InSegment {
  segment?: number;
  segments?: number;
}

/** A whole job's generation: each segment's stages, then the frame interpolator's, pair by pair. */
export type ChainProgress = (Exclude<GenerationProgress, { stage: 'done' }> & InSegment) | { stage: 'interpolating'; pair: number; pairs: number };

export type JobProgress =
  | { stage: 'queued'; position: number }
  | ({ stage: 'loading' | 'encoding' | 'writing'; message?: string } & InSegment)
  | Extract<ChainProgress, { stage: 'sampling' | 'decoding' | 'interpolating' }>
  | { stage: 'done' };
