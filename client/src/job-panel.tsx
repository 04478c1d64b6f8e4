// The right-hand side: the current job's video (or its live preview while it runs) with a
// progress bar, its settings and actions, and the other jobs still queued or running.
import type { Ref } from 'preact';
import { videoFormats } from '../../common/video-formats.js';
import { videoUrl, type Job } from './api.js';
import { describeProgress, keySettings } from './describe.js';
import { labelOf } from './form.js';

const isActive = (j: Job) => j.status === 'queued' || j.status === 'running';

function Progress({ job, onCancel, compact }: { job: Job; onCancel: () => void; compact?: boolean }) {
  const { label, fraction } = describeProgress(job);
  return (
    <div class={`progress-block${compact ? ' compact' : ''}`}>
      <div class="progress-label" data-testid={compact ? 'other-progress-label' : 'progress-label'}>
        {label}
      </div>
      <div class="progress-row">
        <progress max={1} value={fraction} aria-label={`progress of job ${job.id}`} data-testid={compact ? 'other-progress' : 'progress'} />
        <button type="button" class="danger" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

interface Props {
  /** The job shown; undefined until its snapshot arrives after a submit. */
  job: Job | undefined;
  pending: boolean;
  preview?: string;
  /** Other queued or running jobs. */
  others: Job[];
  /** width / height of the video the form would make, for the empty stage. */
  aspect: number;
  onOpen: (id: string) => void;
  onCancel: (id: string) => void;
  onRerun: (job: Job) => void;
  onLoad: (job: Job) => void;
  /** A new job from the last frame of this finished one. */
  onContinue: (job: Job) => void;
  panelRef: Ref<HTMLElement>;
}

export function JobPanel({ job, pending, preview, others, aspect, onOpen, onCancel, onRerun, onLoad, onContinue, panelRef }: Props) {
  const active = job && isActive(job);
  const format = job && videoFormats.find((f) => job.videos[f]);
  const ratio = job ? job.settings.width / job.settings.height : aspect;
  return (
    <section class="card output" aria-label="Video" ref={panelRef}>
      <div class="stage" style={{ aspectRatio: String(Number.isFinite(ratio) && ratio > 0 ? ratio : 16 / 9) }}>
        {job?.status === 'done' && format ? (
          <video data-testid="result-video" src={videoUrl(job.id, format)} autoplay loop muted playsinline controls />
        ) : active && preview ? (
          <img class="preview" src={preview} alt="live preview of the middle frame" data-testid="preview" />
        ) : (
          <p class="muted">{pending || active ? 'The preview appears after the first step…' : 'The video appears here.'}</p>
        )}
      </div>
      {pending && !job && (
        <div class="progress-block">
          <div class="progress-label" data-testid="progress-label">
            Sending the image…
          </div>
          <progress aria-label="sending" data-testid="progress" />
        </div>
      )}
      {job && active && <Progress job={job} onCancel={() => onCancel(job.id)} />}
      {job && !active && (
        <p role="status" class={job.status === 'done' ? 'muted' : job.status === 'cancelled' ? 'muted' : 'error'} data-testid="job-outcome">
          {job.status === 'done' ? `Done${job.timings ? ` in ${(job.timings.totalMs / 1000).toFixed(1)} s` : ''}.` : job.status === 'cancelled' ? 'Cancelled.' : job.error}
        </p>
      )}
      {job?.status === 'done' && (
        <>
          <div class="row downloads">
            {videoFormats
              .filter((f) => job.videos[f])
              .map((f) => (
                <a key={f} class="button" href={videoUrl(job.id, f, true)} download={`svd-${job.id}.${f}`}>
                  Download {f.toUpperCase()}
                </a>
              ))}
          </div>
          {job.saved && <p class="muted">{job.saved.status === 'saved' ? `Saved to ${job.saved.files?.[0]}` : job.saved.status === 'pending' ? 'Saving to the Drive folder…' : job.saved.error}</p>}
        </>
      )}
      {job && (
        <details class="job-settings">
          <summary data-testid="key-settings">{keySettings(job)}</summary>
          <dl class="settings-list">
            {Object.entries(job.settings)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => (
                <div key={k}>
                  <dt>{labelOf(k)}</dt>
                  <dd>{Array.isArray(v) ? v.join(', ') : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v)}</dd>
                </div>
              ))}
          </dl>
        </details>
      )}
      {job && !active && (
        <div class="row">
          <button type="button" onClick={() => onRerun(job)}>
            Run again
          </button>
          <button type="button" onClick={() => onLoad(job)} title="put this job's image, crop and settings back into the form">
            Load these settings
          </button>
          {job.status === 'done' && (
            <button type="button" onClick={() => onContinue(job)} title="a new video starting where this one ends" data-testid="continue">
              Continue from the last frame
            </button>
          )}
        </div>
      )}
      {others.length > 0 && (
        <section class="others" aria-label="Other jobs in the queue">
          <h2>Also in the queue</h2>
          <ul>
            {others.map((o) => (
              <li key={o.id} data-testid="other-job">
                <button type="button" class="link" onClick={() => onOpen(o.id)}>
                  {keySettings(o)}
                </button>
                <Progress job={o} compact onCancel={() => onCancel(o.id)} />
              </li>
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}
