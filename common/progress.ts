// Progress as the pipeline reports it, and as a job carries it to the page (which adds the queue
// and the writing of the files around the pipeline's stages). The stages a worker reports are a
// schema: the server checks a worker's messages with it.
import { z } from 'zod';

/** The pipeline's stages while it works (a worker sends these). */
export const pipelineProgressSchema = z.discriminatedUnion('stage', [
  z.object({ stage: z.literal('loading'), message: z.string() }),
  z.object({ stage: z.literal('encoding') }),
  z.object({ stage: z.literal('sampling'), step: z.number(), steps: z.number(), elapsedMs: z.number(), etaMs: z.number() }),
  z.object({ stage: z.literal('decoding'), chunk: z.number(), chunks: z.number() }),
]);

export type GenerationProgress = z.infer<typeof pipelineProgressSchema> | { stage: 'done'; elapsedMs: number };

export type JobProgress =
  | { stage: 'queued'; position: number }
  | { stage: 'loading' | 'encoding' | 'writing'; message?: string }
  | Extract<GenerationProgress, { stage: 'sampling' | 'decoding' }>
  | { stage: 'done' };
