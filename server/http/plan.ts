// POST /api/plan {settings}: how the job would run on the worker that would take it (decode
// chunk, layout, the memory it was checked against), or why it would be refused: the page shows
// this instead of working anything out itself. The settings are checked as a job's are.
import { Router } from 'express';
import { z } from 'zod';
import type { ApiContext } from './context.js';
import { HttpError } from './errors.js';
import { checkJobSettings } from './jobs.js';

const planBodySchema = z.object({ settings: z.record(z.string(), z.unknown()).default({}) }, { error: 'the body must be a JSON object like {"settings": {...}}' });

export function planRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.post('/plan', (req, res) => {
    const body = planBodySchema.safeParse(req.body ?? {});
    if (!body.success) throw new HttpError(400, body.error.issues[0]!.message);
    const settings = checkJobSettings(ctx, body.data.settings);
    const answer = ctx.plan?.(settings);
    if (!answer) throw new HttpError(503, `the plan is made once ${settings.model ? `model "${settings.model}"` : 'the model'} has loaded on a worker; ask again shortly`);
    res.json(answer);
  });
  return router;
}
