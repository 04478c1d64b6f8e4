// GET /api/health: the model, the workers and the queue. The queue is given as counts; the running
// job's id only to a client that may see it.
import { Router } from 'express';
import type { HealthInfo } from '../../common/api-types.js';
import type { ApiContext } from './context.js';
import { ownerOfRequest } from './context.js';
import { mayAccess } from './access.js';

export function healthRoutes(ctx: ApiContext, health: () => HealthInfo | Promise<HealthInfo>): Router {
  const router = Router();
  router.get('/health', async (_req, res) => {
    const { service } = ctx;
    const running = service.runningId ? service.store.get(service.runningId) : undefined;
    const visible = running && mayAccess(running, ownerOfRequest(res), ctx.access) ? running.id : null;
    res.json({ ...(await health()), sharedHistory: ctx.access.sharedHistory, queue: { waiting: service.queueLength, running: visible } });
  });
  return router;
}
