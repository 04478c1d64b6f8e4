// The plan of a job on the worker that would run it, made in the server from the worker's plan
// basis with the worker's own planner (models/plan/job-plan.ts), so the page is shown what the
// worker will do. On the CPU the machine's free memory is read now, and the worker process's
// resident memory counts what its arenas hold from earlier jobs, as the worker counts it.
import type { PlanAnswer } from '../../common/job-plan.js';
import type { GenerationSettings } from '../../common/settings.js';
import { deviceNow, tryPlanJob } from '../../models/plan/job-plan.js';
import { residentMiB } from '../../models/plan/host-memory.js';
import type { WorkerPool } from './pool.js';

/** The plan for `settings` (model: the server's first when absent); undefined while no worker has that model loaded. */
export function planOnWorkers(pool: WorkerPool, settings: GenerationSettings & { model?: string }): PlanAnswer | undefined {
  const wanted = settings.model ?? pool.defaultModel;
  const candidates = [pool.firstFree(settings.model), ...pool.workers];
  const worker = candidates.find((w) => w?.planning && w.loadedModel === wanted);
  const planning = worker?.planning;
  if (!planning) return undefined;
  const { device, model } = planning.basis;
  const { pid } = planning;
  return tryPlanJob(
    deviceNow(device, () => (pid === undefined ? undefined : residentMiB(pid))),
    model,
    settings,
  );
}
