// The right-hand side: the current job's video (or its live preview while it runs) with a
// progress bar, its settings and actions, and the other jobs still queued or running.
import type { Ref } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { settingsList } from '../../common/settings.js';
import { videoFormats } from '../../common/video-formats.js';
import { videoUrl, type Job } from './api.js';
import { describeProgress, keySettings, tookMs } from './describe.js';

const isActive = (j: Job) => j.status === 'queued' || j.status === 'running';

/** Milliseconds since `value` last changed, updated every second (the ETA counts down between reports). */
function useAge(value: unknown): number {
  const since = useMemo(() => Date.now(), [value]);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return Math.max(0, now - since);
}

function Progress({ job, onCancel, compact, offline }: { job: Job; onCancel: () => void; compact?: boolean; offline: boolean }) {
  const age = useAge(job.progress);
  // Without the server, the last report is all the page knows: said as such, with no ETA.
  const { label, eta, fraction } = describeProgress(job, offline ? 0 : age);
  return (
    <div class={`progress-block${compact ? ' compact' : ''}`}>
      <div class="progress-label" data-testid={compact ? 'other-progress-label' : 'progress-label'}>
        {offline ? `Last news from the server: ${label}` : eta ? `${label} · ETA ${eta}` : label}
      </div>
      <div class="progress-row">
        <progress max={1} value={fraction} aria-label={`progress of job ${job.id}`} data-testid={compact ? 'other-progress' : 'progress'} />
        <button type="button" class="danger" onClick={onCancel} disabled={offline} title={offline ? 'the server cannot be reached' : undefined}>
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
  /** The server cannot be reached: nothing here can be acted on, and what is shown may be old. */
  offline: boolean;
  /** What the server said about this job after a lost connection. */
  note?: string;
  /** "the Drive folder" or "the save folder". */
  saveFolder: string;
  /** The newest finished video of another job, kept in view when this one ends without one. */
  lastVideo?: Job;
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

export function JobPanel({ job, pending, offline, note, saveFolder, lastVideo, preview, others, aspect, onOpen, onCancel, onRerun, onLoad, onContinue, panelRef }: Props) {
  const active = job && isActive(job);
  const format = job && videoFormats.find((f) => job.videos[f]);
  const ended = job && !active && job.status !== 'done';
  const fallback = ended && lastVideo && videoFormats.find((f) => lastVideo.videos[f]);
  const shown = fallback ? lastVideo : job;
  const ratio = shown ? shown.settings.width / shown.settings.height : aspect;
  const took = job && tookMs(job);
  return (
    <section class="card output" aria-label="Video" ref={panelRef}>
      {offline && (
        <p class="banner" role="alert" data-testid="offline">
          {active ? 'Lost the connection to the server. Reconnecting… Until it answers, the page cannot tell whether this job is still running.' : 'Lost the connection to the server. Reconnecting…'}
        </p>
      )}
      {note && !offline && (
        <p class="muted" role="status" data-testid="reconnected">
          {note}
        </p>
      )}
      <div class="stage" style={{ aspectRatio: String(Number.isFinite(ratio) && ratio > 0 ? ratio : 16 / 9) }}>
        {job?.status === 'done' && format ? (
          <video data-testid="result-video" src={videoUrl(job.id, format)} autoplay loop muted playsinline controls />
        ) : fallback && lastVideo ? (
          <figure class="last-video">
            <video data-testid="last-video" src={videoUrl(lastVideo.id, fallback)} autoplay loop muted playsinline controls />
            <figcaption class="muted">The last finished video ({keySettings(lastVideo)})</figcaption>
          </figure>
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
      {job && active && <Progress job={job} offline={offline} onCancel={() => onCancel(job.id)} />}
      {job && !active && (
        <p role="status" class={job.status === 'done' ? 'muted' : job.status === 'cancelled' ? 'muted' : 'error'} data-testid="job-outcome">
          {job.status === 'done' ? `Done${took !== undefined ? ` in ${(took / 1000).toFixed(1)} s` : ''}.` : job.status === 'cancelled' ? 'Cancelled.' : job.error}
        </p>
      )}
      {job?.ranOn && (
        <p class="muted" data-testid="ran-on">
          {job.status === 'running' ? 'Running on' : job.status === 'done' ? 'Made on' : 'Ran on'} {job.ranOn.box} ({job.ranOn.worker})
        </p>
      )}
      {job?.status === 'done' && (
        <>
          <div class="row downloads">
            {videoFormats
              .filter((f) => job.videos[f])
              .map((f) => (
                <a key={f} class="button" href={videoUrl(job.id, f, true)} download="">
                  Download {f.toUpperCase()}
                </a>
              ))}
          </div>
          {job.saved && (
            <p class="muted" data-testid="saved">
              {job.saved.status === 'saved' ? `Saved to ${job.saved.files?.join(', ')}` : job.saved.status === 'pending' ? `Saving a copy to ${saveFolder}…` : job.saved.error}
            </p>
          )}
        </>
      )}
      {job && (
        <details class="job-settings">
          <summary data-testid="key-settings">{keySettings(job)}</summary>
          <dl class="settings-list">
            {settingsList(job.settings).map(([label, value]) => (
              <div key={label}>
                <dt>{label}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </details>
      )}
      {job && !active && (
        <div class="row">
          <button type="button" onClick={() => onRerun(job)} disabled={offline}>
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
                <Progress job={o} compact offline={offline} onCancel={() => onCancel(o.id)} />
              </li>
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}
