// Progress as the pipeline reports it, and as a job carries it to the page (which adds the queue
// and the writing of the files around the pipeline's stages).
import type { VideoFormat } from './video-formats.js';

export type GenerationProgress =
  | { stage: 'loading'; message: string }
  | { stage: 'encoding' }
  | { stage: 'sampling'; step: number; steps: number; elapsedMs: number; etaMs: number }
  | { stage: 'decoding'; chunk: number; chunks: number }
  | { stage: 'done'; elapsedMs: number };

/**
 * The server's estimate for the whole job from this point (encode, sampling, decode, writing),
 * from the times of earlier jobs on this machine (server/jobs/eta.ts); absent when it has none.
 */
export interface Remaining {
  remainingMs?: number;
}

export type JobProgress =
  | ({ stage: 'queued'; position: number /** Until the jobs ahead of it are done. */; startsInMs?: number } & Remaining)
  | ({ stage: 'loading' | 'encoding'; message?: string } & Remaining)
  | ({ stage: 'writing'; message?: string /** The video file being written now. */; format?: VideoFormat } & Remaining)
  | (Extract<GenerationProgress, { stage: 'sampling' | 'decoding' }> & Remaining)
  | { stage: 'done' };
