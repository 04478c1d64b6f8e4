// What a downloaded video is called: when it was made and its seed, so a folder of downloads can
// be told apart and a result found again.
import type { JobRecord } from './api-types.js';

/** "svd-2026-12-04_0315-seed42.mp4": what a download is called, named by the server (its Content-Disposition), so the page and API users get the same name. */
export function downloadName(job: Pick<JobRecord, 'createdAt' | 'seed' | 'settings' | 'id'>, format: string): string {
  const d = new Date(job.createdAt);
  const two = (n: number) => String(n).padStart(2, '0');
  const date = Number.isNaN(d.getTime()) ? job.id : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}_${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
  const seed = job.seed ?? job.settings.seed;
  return `svd-${date}${seed === undefined ? '' : `-seed${seed}`}.${format}`;
}
