// The worker boxes behind a front server with --queue: each box, its cards and what each of its
// workers is doing, read again every few seconds (boxes come and go while the page is open).
import { useEffect, useState } from 'preact/hooks';
import type { BoxStatus } from '../../common/boxes.js';
import { api, type Health } from './api.js';

const REFRESH_MS = 5000;

function workerLine(box: BoxStatus, w: BoxStatus['workers'][number]): string {
  const card = box.cards.find((c) => c.index === w.deviceId)?.name;
  const doing = w.job ? `job ${w.job.slice(0, 6)}… (${w.stage ?? 'starting'})` : w.state === 'ready' ? 'free' : w.state;
  return `${w.name}${card ? ` (${card})` : ''}: ${doing}`;
}

export function Boxes({ initial }: { initial: BoxStatus[] }) {
  const [boxes, setBoxes] = useState(initial);
  useEffect(() => {
    const timer = setInterval(() => {
      void api<Health>('health')
        .then((h) => h.boxes && setBoxes(h.boxes))
        .catch(() => {});
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  if (!boxes.length)
    return (
      <p class="muted" data-testid="boxes">
        No worker box has reported yet: jobs wait in the queue until one starts (npm run worker).
      </p>
    );
  return (
    <ul class="boxes muted" data-testid="boxes" aria-label="Worker boxes">
      {boxes.map((b) => (
        <li key={b.name}>
          <strong>{b.name}</strong>
          {b.gone ? ' · gone (not heard from; its running job goes to another box)' : ` · ${b.workers.map((w) => workerLine(b, w)).join(' · ')}`}
        </li>
      ))}
    </ul>
  );
}
