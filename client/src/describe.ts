// Words for a job: where it stands, its key settings, when it was made.
import type { Job } from './api.js';

const secs = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

/**
 * Where a job stands: `label` says the stage, `eta` the time left for the whole job (`sinceMs`
 * after the progress arrived, so it counts down between the server's reports), `fraction` how far.
 */
export function describeProgress(job: Job, sinceMs = 0): { label: string; eta?: string; fraction: number | undefined } {
  const p = job.progress;
  const left = (ms: number | undefined) => (ms === undefined ? undefined : secs(Math.max(0, ms - sinceMs)));
  if (job.status === 'queued' || p?.stage === 'queued') {
    const startsIn = p?.stage === 'queued' ? left(p.startsInMs) : undefined;
    return { label: `Waiting in the queue: position ${job.position || (p?.stage === 'queued' ? p.position : 1)}${startsIn ? ` · starts in about ${startsIn}` : ''}`, fraction: 0 };
  }
  if (!p) return { label: job.status, fraction: job.status === 'done' ? 1 : 0 };
  if (p.stage === 'done') return { label: 'Done', fraction: 1 };
  // With several segments each takes its share of the bar; the interpolator has the last tenth before writing.
  const segment = 'segment' in p && p.segment && p.segments ? { at: p.segment, of: p.segments } : undefined;
  const share = job.settings.interpolate > 1 ? 0.87 : 0.97;
  const part = (f: number) => (share * ((segment ? segment.at - 1 : 0) + f)) / (segment ? segment.of : 1);
  const step = (text: string) => (segment ? `Segment ${segment.at}/${segment.of}, ${text.charAt(0).toLowerCase()}${text.slice(1)}` : text);
  // A sampling step's own ETA covers its segment only: with several, only the server's estimate is the job's.
  const eta = left(p.remainingMs ?? (p.stage === 'sampling' && !segment ? p.etaMs : undefined));
  switch (p.stage) {
    case 'loading':
      return { label: p.message ? `Loading: ${p.message}` : 'Loading the model', eta, fraction: undefined };
    case 'encoding':
      return { label: step('Encoding the image'), eta, fraction: part(0.03) };
    case 'sampling':
      return { label: step(`Sampling step ${p.step}/${p.steps} · ${secs(p.elapsedMs + sinceMs)} elapsed`), eta, fraction: part(0.05 + 0.82 * (p.step / p.steps)) };
    case 'decoding':
      return { label: step(`Decoding frames ${p.chunk}/${p.chunks}`), eta, fraction: part(0.87 + 0.13 * (p.chunk / p.chunks)) };
    case 'interpolating':
      return { label: `Interpolating frames ${p.pair}/${p.pairs}`, eta, fraction: 0.87 + 0.1 * (p.pair / p.pairs) };
    case 'writing':
      return { label: p.format ? `Writing the ${p.format.toUpperCase()} video` : 'Writing the video', eta, fraction: 0.97 };
  }
}

/** From the click on Generate (the job's submission) to its end. */
export function tookMs(job: Job): number | undefined {
  if (!job.finishedAt) return undefined;
  const ms = Date.parse(job.finishedAt) - Date.parse(job.createdAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** The seed a job used, or the one typed for it when it ended before it began. */
export const seedOf = (job: Job): number | undefined => job.seed ?? job.settings.seed;

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
    seedOf(job) !== undefined && `seed ${seedOf(job)}`,
  ]
    .filter(Boolean)
    .join(' · ');
}

export function madeAt(job: Job): string {
  const d = new Date(job.createdAt);
  const today = new Date().toDateString() === d.toDateString();
  return d.toLocaleString(undefined, today ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
