// This browser's jobs (every job with --shared-history), newest first, a page at a time: a frame
// of its video (the input while it has none), its status, when it was made and its key settings,
// and for an ended job a button that deletes it from the server.
import { useState } from 'preact/hooks';
import { inputUrl, posterUrl, type Job } from './api.js';
import { keySettings, madeAt } from './describe.js';

function Thumb({ job }: { job: Job }) {
  const [broken, setBroken] = useState(false);
  if (broken) return <span class="thumb missing">no picture</span>;
  return <img class="thumb" src={job.status === 'done' ? posterUrl(job.id) : inputUrl(job.id)} alt="" loading="lazy" onError={() => setBroken(true)} data-testid="history-thumb" />;
}

/** The job a continuation started from, in words: when it was made, if it is still listed. */
function continued(jobs: Job[], id: string): string {
  const from = jobs.find((o) => o.id === id);
  return from ? `the video of ${madeAt(from)}` : 'an earlier video';
}

interface Props {
  jobs: Job[];
  current?: string;
  onOpen: (id: string) => void;
  onDelete: (id: string) => void;
  /** Older jobs are on the server. */
  more: boolean;
  onMore: () => void;
  shared: boolean;
}

export function History({ jobs, current, onOpen, onDelete, more, onMore, shared }: Props) {
  if (jobs.length === 0) return null;
  return (
    <section class="card history" aria-label="History">
      <h2>History</h2>
      <p class="muted">{shared ? 'Everyone with this link sees these jobs.' : 'Only this browser sees its jobs.'}</p>
      <ul>
        {jobs.map((j) => (
          <li key={j.id}>
            <button type="button" class={j.id === current ? 'current' : ''} aria-current={j.id === current ? 'true' : undefined} onClick={() => onOpen(j.id)} data-testid="history-item">
              <span class="thumb-box">
                <Thumb key={`${j.id}-${j.status === 'done'}`} job={j} />
                <span class={`badge ${j.status}`}>{j.status}</span>
              </span>
              <span class="caption">
                <time dateTime={j.createdAt}>{madeAt(j)}</time>
                <span class="muted">{keySettings(j)}</span>
                {(j.continues || j.variation) && (
                  <span class="muted" data-testid="history-link">
                    {j.continues ? `continues ${continued(jobs, j.continues)}` : `variation ${j.variation!.index} of ${j.variation!.of}`}
                  </span>
                )}
              </span>
            </button>
            {j.status !== 'queued' && j.status !== 'running' && (
              <button
                type="button"
                class="delete"
                aria-label={`Delete the job made ${madeAt(j)}`}
                title="Delete this job and its files from the server (copies in the save folder stay)"
                onClick={() => {
                  if (confirm('Delete this job and its files from the server? Copies in the save folder stay.')) onDelete(j.id);
                }}
                data-testid="history-delete"
              >
                Delete
              </button>
            )}
          </li>
        ))}
      </ul>
      {more && (
        <button type="button" onClick={onMore} data-testid="history-more">
          Show older jobs
        </button>
      )}
    </section>
  );
}
