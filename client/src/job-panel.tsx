// One job: progress while it waits and runs, the video and its settings when done.
import type { Job } from './api.js';

const secs = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

export function describeProgress(job: Job): { label: string; fraction: number } {
  const p = job.progress;
  if (job.status === 'queued' || p?.stage === 'queued') return { label: `Waiting in the queue: position ${job.position || (p?.stage === 'queued' ? p.position : 1)}`, fraction: 0 };
  if (!p) return { label: job.status, fraction: job.status === 'done' ? 1 : 0 };
  switch (p.stage) {
    case 'loading':
      return { label: p.message ?? 'Loading the model', fraction: 0.01 };
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

interface Props {
  job: Job;
  preview?: string;
  onCancel: () => void;
  onRerun: () => void;
  onUseSettings: () => void;
}

export function JobPanel({ job, preview, onCancel, onRerun, onUseSettings }: Props) {
  const active = job.status === 'queued' || job.status === 'running';
  const { label, fraction } = describeProgress(job);
  return (
    <section class="card job" aria-label="Current job" aria-live="polite">
      {active && (
        <>
          <div class="progress-label" data-testid="progress-label">
            {label}
          </div>
          <progress max={1} value={fraction} data-testid="progress" />
          <div class="row">
            <button type="button" class="danger" onClick={onCancel}>
              Cancel
            </button>
          </div>
          {preview && <img class="preview" src={preview} alt="live preview of the middle frame" data-testid="preview" />}
        </>
      )}
      {job.status === 'done' && (
        <>
          <video data-testid="result-video" src={`/api/jobs/${job.id}/video.${job.videos.mp4 ? 'mp4' : job.videos.webm ? 'webm' : 'gif'}`} autoplay loop muted playsinline controls />
          <div class="row downloads">
            {(['mp4', 'gif', 'webm'] as const)
              .filter((f) => job.videos[f])
              .map((f) => (
                <a key={f} class="button" href={`/api/jobs/${job.id}/video.${f}?download`} download={`svd-${job.id}.${f}`}>
                  Download {f.toUpperCase()}
                </a>
              ))}
          </div>
          {job.saved && <p class="muted">{job.saved.status === 'saved' ? `Saved to ${job.saved.files?.[0]}` : job.saved.status === 'pending' ? 'Saving to the Drive folder…' : job.saved.error}</p>}
        </>
      )}
      {(job.status === 'failed' || job.status === 'interrupted' || job.status === 'cancelled') && (
        <p class={job.status === 'cancelled' ? 'muted' : 'error'}>{job.status === 'cancelled' ? 'Cancelled.' : job.error}</p>
      )}
      <details open={job.status === 'done'}>
        <summary>Settings{job.seed !== undefined ? ` · seed ${job.seed}` : ''}</summary>
        <dl class="settings-list">
          {Object.entries(job.settings).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{Array.isArray(v) ? v.join(', ') : String(v)}</dd>
            </div>
          ))}
        </dl>
      </details>
      {!active && (
        <div class="row">
          <button type="button" onClick={onRerun}>
            Run again with these settings
          </button>
          <button type="button" onClick={onUseSettings}>
            Load these settings
          </button>
        </div>
      )}
    </section>
  );
}

export function History({ jobs, current, onOpen }: { jobs: Job[]; current?: string; onOpen: (id: string) => void }) {
  if (jobs.length === 0) return null;
  return (
    <section class="card" aria-label="History">
      <h2>History</h2>
      <ul class="history">
        {jobs.map((j) => (
          <li key={j.id}>
            <button type="button" class={j.id === current ? 'current' : ''} onClick={() => onOpen(j.id)} aria-label={`open job ${j.id} (${j.status})`}>
              <img src={`/api/jobs/${j.id}/input.png`} alt="" loading="lazy" />
              <span class={`badge ${j.status}`}>{j.status}</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function Login({ onToken, error }: { onToken: (t: string) => void; error?: string }) {
  return (
    <main class="login">
      <h1>svd-studio</h1>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          onToken(String(new FormData(e.target as HTMLFormElement).get('token') ?? ''));
        }}
      >
        <label for="token">Access token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required />
        <small>{error ?? 'The server printed it when it started (or open the link that includes it).'}</small>
        <button type="submit">Open</button>
      </form>
    </main>
  );
}
