// Words for a job: where it stands, its key settings, when it was made.
import type { Job } from './api.js';

const secs = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

export function describeProgress(job: Job): { label: string; fraction: number | undefined } {
  const p = job.progress;
  if (job.status === 'queued' || p?.stage === 'queued') return { label: `Waiting in the queue: position ${job.position || (p?.stage === 'queued' ? p.position : 1)}`, fraction: 0 };
  if (!p) return { label: job.status, fraction: job.status === 'done' ? 1 : 0 };
  switch (p.stage) {
    case 'loading':
      return { label: p.message ? `Loading: ${p.message}` : 'Loading the model', fraction: undefined };
    case 'encoding':
      return { label: 'Encoding the image', fraction: 0.03 };
    case 'sampling':
      return { label: `Sampling step ${p.step}/${p.steps} · ${secs(p.elapsedMs)} elapsed · ETA ${secs(p.etaMs)}`, fraction: 0.05 + 0.8 * (p.step / p.steps) };
    case 'decoding':
      return { label: `Decoding frames ${p.chunk}/${p.chunks}`, fraction: 0.85 + 0.1 * (p.chunk / p.chunks) };
    case 'writing':
      return { label: 'Writing the video', fraction: 0.97 };
    case 'done':
      return { label: 'Done', fraction: 1 };
  }
}

/** "256×128 · 5 frames · 8 steps · motion 127 · 7 fps · seed 42" */
export function keySettings(job: Job): string {
  const s = job.settings;
  return [`${s.width}×${s.height}`, s.frames !== undefined && `${s.frames} frames`, `${s.steps} steps`, `motion ${s.motionBucket}`, `${s.fps} fps`, job.seed !== undefined && `seed ${job.seed}`]
    .filter(Boolean)
    .join(' · ');
}

export function madeAt(job: Job): string {
  const d = new Date(job.createdAt);
  const today = new Date().toDateString() === d.toDateString();
  return d.toLocaleString(undefined, today ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
