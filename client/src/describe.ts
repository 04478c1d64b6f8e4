// Words for a job: where it stands, its key settings, when it was made.
import type { Job } from './api.js';

const secs = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

export function describeProgress(job: Job): { label: string; fraction: number | undefined } {
  const p = job.progress;
  if (job.status === 'queued' || p?.stage === 'queued') return { label: `Waiting in the queue: position ${job.position || (p?.stage === 'queued' ? p.position : 1)}`, fraction: 0 };
  if (!p) return { label: job.status, fraction: job.status === 'done' ? 1 : 0 };
  // With several segments each takes its share of the bar; the interpolator has the last tenth before writing.
  const segment = 'segment' in p && p.segment && p.segments ? { at: p.segment, of: p.segments } : undefined;
  const share = job.settings.interpolate > 1 ? 0.87 : 0.97;
  const part = (f: number) => (share * ((segment ? segment.at - 1 : 0) + f)) / (segment ? segment.of : 1);
  const prefix = segment ? `Segment ${segment.at}/${segment.of}, ` : '';
  const step = (text: string) => (segment ? `${prefix}${text.charAt(0).toLowerCase()}${text.slice(1)}` : text);
  switch (p.stage) {
    case 'loading':
      return { label: p.message ? `Loading: ${p.message}` : 'Loading the model', fraction: undefined };
    case 'encoding':
      return { label: step('Encoding the image'), fraction: part(0.03) };
    case 'sampling':
      return { label: step(`Sampling step ${p.step}/${p.steps} · ${secs(p.elapsedMs)} elapsed · ETA ${secs(p.etaMs)}`), fraction: part(0.05 + 0.82 * (p.step / p.steps)) };
    case 'decoding':
      return { label: step(`Decoding frames ${p.chunk}/${p.chunks}`), fraction: part(0.87 + 0.13 * (p.chunk / p.chunks)) };
    case 'interpolating':
      return { label: `Interpolating frames ${p.pair}/${p.pairs}`, fraction: 0.87 + 0.1 * (p.pair / p.pairs) };
    case 'writing':
      return { label: 'Writing the video', fraction: 0.97 };
    case 'done':
      return { label: 'Done', fraction: 1 };
  }
}

/** "256×128 · 5 frames · 8 steps · motion 127 · 7 fps · seed 42" */
export function keySettings(job: Job): string {
  const s = job.settings;
  return [
    `${s.width}×${s.height}`,
    s.frames !== undefined && `${s.frames} frames`,
    `${s.steps} steps`,
    `motion ${s.motionBucket}`,
    `${s.fps * s.interpolate} fps`,
    s.extend > 1 && `${s.extend} segments`,
    s.interpolate > 1 && `interpolated ×${s.interpolate}`,
    job.seed !== undefined && `seed ${job.seed}`,
  ]
    .filter(Boolean)
    .join(' · ');
}

export function madeAt(job: Job): string {
  const d = new Date(job.createdAt);
  const today = new Date().toDateString() === d.toDateString();
  return d.toLocaleString(undefined, today ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
