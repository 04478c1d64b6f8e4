// A job as clients see it: the record without its owner, plus where it stands in the queue.
import type { JobSnapshot } from '../../common/api-types.js';
import type { JobRecord } from './job.js';
import type { JobService } from './job-service.js';

export function snapshot(service: JobService, job: JobRecord): JobSnapshot {
  const { owner: _owner, ...shown } = job;
  return { ...shown, position: service.position(job.id), queueLength: service.queueLength };
}
