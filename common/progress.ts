// Progress as the pipeline reports it, and as a job carries it to the page (which adds the queue
// and the writing of the files around the pipeline's stages).

export type GenerationProgress =
  | { stage: 'loading'; message: string }
  | { stage: 'encoding' }
  | { stage: 'sampling'; step: number; steps: number; elapsedMs: number; etaMs: number }
  | { stage: 'decoding'; chunk: number; chunks: number }
  | { stage: 'done'; elapsedMs: number };

export type JobProgress =
  | { stage: 'queued'; position: number }
  | { stage: 'loading' | 'encoding' | 'writing'; message?: string }
  | Extract<GenerationProgress, { stage: 'sampling' | 'decoding' }>
  | { stage: 'done' };
