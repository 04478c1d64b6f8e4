// What every route module is given, and the one lookup of a job on behalf of a client.
import type { Response } from 'express';
import type { JobRecord } from '../jobs/job.js';
import { JOB_ID } from '../jobs/job.js';
import type { JobService } from '../jobs/job-service.js';
import { mayAccess, type AccessOptions } from './access.js';
import { HttpError } from './errors.js';

export interface ApiContext {
  service: JobService;
  access: AccessOptions;
  /** Names a job may ask for in settings.model. */
  modelNames?: string[];
  /** The models whose jobs may interpolate (a frame interpolator is installed for them); all when absent. */
  interpolatingModels?: string[];
}

/** The requesting client's owner digest (set by access.ts's identify). */
export const ownerOfRequest = (res: Response): string | undefined => res.locals.owner as string | undefined;

/**
 * The job, when this client may see it. Someone else's job is the same 404 as one that does not
 * exist, on every route, so ids cannot be probed.
 */
export function ownJob(ctx: ApiContext, res: Response, id: string): JobRecord {
  const job = JOB_ID.test(id) ? ctx.service.store.get(id) : undefined;
  if (!job || !mayAccess(job, ownerOfRequest(res), ctx.access)) throw new HttpError(404, `no job with id "${id.slice(0, 40)}"`);
  return job;
}
