// The videos asked for together (the variations setting) side by side, each with its seed, its
// state, and what can be done with it: open it, download it, continue from its last frame.
import { videoFormats } from '../../common/video-formats.js';
import { videoUrl, type Job } from './api.js';
import { describeProgress } from './describe.js';

/** The jobs of `job`'s variation group, in order; empty when it is not one of several. */
export function variationsOf(job: Job | undefined, jobs: Job[]): Job[] {
  const group = job?.variation?.group;
  if (!group) return [];
  return jobs.filter((j) => j.variation?.group === group).sort((a, b) => a.variation!.index - b.variation!.index);
}

interface Props {
  jobs: Job[];
  current?: string;
  onOpen: (id: string) => void;
  onContinue: (job: Job) => void;
}

export function Variations({ jobs, current, onOpen, onContinue }: Props) {
  if (jobs.length < 2) return null;
  return (
    <section class="card variations" aria-label="Variations">
      <h2>Variations</h2>
      <ul>
        {jobs.map((j) => {
          const format = videoFormats.find((f) => j.videos[f]);
          return (
            <li key={j.id} class={j.id === current ? 'current' : ''} data-testid="variation">
              <div class="stage" style={{ aspectRatio: String(j.settings.width / j.settings.height) }}>
                {j.status === 'done' && format ? <video src={videoUrl(j.id, format)} autoplay loop muted playsinline /> : <p class="muted">{describeProgress(j).label}</p>}
              </div>
              <p class="seed" data-testid="variation-seed">
                {`${j.variation!.index}/${j.variation!.of} · seed ${j.seed ?? j.settings.seed ?? 'random'}`}
              </p>
              <div class="row">
                <button type="button" onClick={() => onOpen(j.id)} aria-current={j.id === current ? 'true' : undefined}>
                  Open
                </button>
                {j.status === 'done' && format && (
                  <a class="button" href={videoUrl(j.id, format, true)} download={`svd-${j.id}.${format}`}>
                    Download
                  </a>
                )}
                {j.status === 'done' && (
                  <button type="button" onClick={() => onContinue(j)}>
                    Continue
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
