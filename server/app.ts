// Express + socket.io, put together: security headers, the access gate (token, origin, client id)
// in front of the API's routes by resource (http/), the page's static files, and the socket
// (socket.ts). Everything a client sends is parsed by a schema before use, and every client
// mistake is answered with a 4xx and a plain message (http/errors.ts).
import { existsSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import express from 'express';
import rateLimit, { ipKeyGenerator } from 'express-rate-limit';
import helmet from 'helmet';
import type { HealthInfo } from '../common/api-types.js';
import { FailedLoginThrottle, KnownClients, requestClient, requireToken, type Gate } from './auth.js';
import { trustsHop, type ProxyTrust } from './client-address.js';
import { identify, sameOrigin, viaHttps, type AccessOptions } from './http/access.js';
import type { ApiContext, Planner } from './http/context.js';
import { errorHandler, notFound } from './http/errors.js';
import { fileRoutes } from './http/files.js';
import { healthRoutes } from './http/health.js';
import { jobRoutes } from './http/jobs.js';
import { planRoutes } from './http/plan.js';
import type { JobService } from './jobs/job-service.js';
import { attachSocket, type JobIo } from './socket.js';

export type { HealthInfo } from '../common/api-types.js';

/** A request body must arrive within this time, so slow senders cannot hold connections open. */
export const REQUEST_TIMEOUT_MS = 90_000;

export interface AppOptions {
  service: JobService;
  token?: string;
  health: () => HealthInfo | Promise<HealthInfo>;
  clientDir?: string;
  jobRateLimit?: number;
  /** Names a job may ask for in settings.model. */
  modelNames?: string[];
  /** The models whose jobs may interpolate (a frame interpolator is installed for them); all when absent. */
  interpolatingModels?: string[];
  /** Whose X-Forwarded-For is believed (see client-address.ts); 'none' by default. */
  trustProxy?: ProxyTrust;
  /** Wrong tokens a client may send per window before it is refused for the rest of it. */
  loginThrottle?: { limit: number; windowMs: number };
  /** Every visitor sees and controls every job (--shared-history). */
  sharedHistory?: boolean;
  /** Host names the server answers to (a server without a token: its loopback names). */
  allowedHosts?: string[];
  /** How long a request may take to arrive (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** More API routes behind the same gate (the worker boxes', with --queue). */
  moreRoutes?: express.Router[];
  /** The job planner on the workers (POST /api/plan); without it the route answers 503. */
  plan?: Planner;
}

export function createApp(opts: AppOptions): { app: express.Express; server: HttpServer; io: JobIo } {
  const { service } = opts;
  const trust = opts.trustProxy ?? 'none';
  const gate: Gate = { token: opts.token, trust, throttle: new FailedLoginThrottle(opts.loginThrottle), known: new KnownClients() };
  const access: AccessOptions = { trust, sharedHistory: opts.sharedHistory ?? false, allowedHosts: opts.allowedHosts };
  const ctx: ApiContext = { service, access, modelNames: opts.modelNames, interpolatingModels: opts.interpolatingModels, plan: opts.plan };
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustsHop(trust));
  app.use(
    helmet({
      contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:', 'blob:'], 'media-src': ["'self'", 'blob:'], upgradeInsecureRequests: null } },
      crossOriginEmbedderPolicy: false,
    }),
  );
  app.use(sameOrigin(access));
  app.use(identify(access));

  const api = express.Router();
  api.use(
    requireToken(
      gate,
      (_req, res) => res.locals.clientId as string | undefined,
      (req) => viaHttps(req.headers, req.secure, trust),
    ),
  );
  // Not strict: a body of JSON that is not an object (null, 5) reaches the route's schema, which says what it should be.
  api.use(express.json({ limit: '64kb', strict: false }));
  const limiter = rateLimit({
    windowMs: 60_000,
    limit: opts.jobRateLimit ?? 30,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req) => ipKeyGenerator(requestClient(req, trust)),
    message: { error: 'too many jobs submitted in the last minute; wait a little' },
  });
  api.use(healthRoutes(ctx, opts.health));
  api.use(jobRoutes(ctx, limiter));
  api.use(planRoutes(ctx));
  api.use(fileRoutes(ctx));
  for (const routes of opts.moreRoutes ?? []) api.use(routes);
  api.use(notFound);

  app.use('/api', api);
  if (opts.clientDir && existsSync(join(opts.clientDir, 'index.html'))) {
    app.use(express.static(opts.clientDir, { index: 'index.html', maxAge: '1h' }));
  } else {
    app.get('/', (_req, res) => {
      res.type('text/plain').send('svd-studio API is running; the page is not built (npm run build). See README for the HTTP API.');
    });
  }
  app.use(errorHandler);

  const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  // Node checks the timeouts only every connectionsCheckingInterval (30 s by default).
  const server = createServer({ requestTimeout, headersTimeout: Math.min(requestTimeout, 30_000), connectionsCheckingInterval: Math.min(5000, Math.ceil(requestTimeout / 3)) }, app);
  const io = attachSocket(server, service, gate, access);
  return { app, server, io };
}
