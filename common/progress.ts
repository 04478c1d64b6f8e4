// Progress as the pipeline reports it, and as a job carries it to the page (which adds the queue
// and the writing of the files around the pipeline's stages). The stages a worker reports are a
// schema: the server checks a worker's messages with it.
import { z } from 'zod';
import type { VideoFormat } from './video-formats.js';

const loading = z.object({ stage: z.literal('loading'), message: z.string() });
const encoding = z.object({ stage: z.literal('encoding') });
const sampling = z.object({ stage: z.literal('sampling'), step: z.number(), steps: z.number(), elapsedMs: z.number(), etaMs: z.number() });
const decoding = z.object({ stage: z.literal('decoding'), chunk: z.number(), chunks: z.number() });

/** The pipeline's stages while it works on one clip. */
export const pipelineProgressSchema = z.discriminatedUnion('stage', [loading, encoding, sampling, decoding]);

/** Which of a job's segments (the extend setting) a stage belongs to; absent for a single clip. */
const inSegment = { segment: z.number().int().positive().optional(), segments: z.number().int().positive().optional() };
export type InSegment = { segment?: number; segments?: number };

/** A whole job's generation (a worker sends these): each segment's stages, then the frame interpolator's, pair by pair. */
export const chainProgressSchema = z.discriminatedUnion('stage', [
  loading.extend(inSegment),
  encoding.extend(inSegment),
  sampling.extend(inSegment),
  decoding.extend(inSegment),
  z.object({ stage: z.literal('interpolating'), pair: z.number(), pairs: z.number() }),
]);
export type ChainProgress = z.infer<typeof chainProgressSchema>;

export type GenerationProgress = z.infer<typeof pipelineProgressSchema> | { stage: 'done'; elapsedMs: number };

/**
 * The server's estimate for the whole job from this point (encode, sampling, decode, writing),
 * from the times of earlier jobs on this machine (server/jobs/eta.ts); absent when it has none.
 */
export interface Remaining {
  remainingMs?: number;
}

export type JobProgress =
  | ({ stage: 'queued'; position: number /** Until the jobs ahead of it are done. */; startsInMs?: number } & Remaining)
  | ({ stage: 'loading' | 'encoding'; message?: string } & InSegment & Remaining)
  | ({ stage: 'writing'; message?: string /** The video file being written now. */; format?: VideoFormat } & Remaining)
  | (Extract<ChainProgress, { stage: 'sampling' | 'decoding' | 'interpolating' }> & Remaining)
  | { stage: 'done' };
