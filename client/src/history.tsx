// Every job, newest first: a frame of its video (the input while it has none), its status, when
// it was made and its key settings.
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

export function History({ jobs, current, onOpen }: { jobs: Job[]; current?: string; onOpen: (id: string) => void }) {
  if (jobs.length === 0) return null;
  return (
    <section class="card history" aria-label="History">
      <h2>History</h2>
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
          </li>
        ))}
      </ul>
    </section>
  );
}
