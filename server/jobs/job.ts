// What a job is, as stored in its folder's job.json and sent to clients: the shapes live in
// common/ (the page shares them); the id pattern is the server's.
export { jobSettingsSchema, type JobSettings } from '../../common/settings.js';
export { jobRecordSchema, type JobRecord, type JobStatus } from '../../common/api-types.js';
export type { JobProgress } from '../../common/progress.js';

export const JOB_ID = /^[a-z0-9]{16}$/;
