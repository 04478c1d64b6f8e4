// POST /api/plan {settings}: how the job would run on the worker that would take it (decode
// chunk, layout, the memory it was checked against), or why it would be refused: the page shows
// this instead of working anything out itself. The settings are checked as a job's are.
import { Router } from 'express';
import type { ApiContext } from './context.js';
import { HttpError } from './errors.js';
import { checkJobSettings, settingsOfBody } from './jobs.js';

export function planRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.post('/plan', (req, res) => {
    // JSON only: a body of another type would not be read, and the plan would be of the defaults.
    if (!req.is('application/json')) throw new HttpError(415, 'send the settings as JSON (content-type: application/json), like {"settings": {...}}');
    const settings = checkJobSettings(ctx, settingsOfBody(req.body) ?? {});
    const answer = ctx.plan?.(settings);
    if (!answer) throw new HttpError(503, `the plan is made once ${settings.model ? `model "${settings.model}"` : 'the model'} has loaded on a worker; ask again shortly`);
    res.json(answer);
  });
  return router;
}
