// The svd-studio server (page, HTTP API, socket.io, a job queue in front of one inference worker
// process per GPU): startServer, which `npm start` (cli/start.ts) and the tests call.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { openModelDir } from '../models/model-dir.js';
import { DEMO_MODEL, PROJECT_ROOT, defaultModelDir } from '../models/paths.js';
import { gpuMemoryModes, providers } from '../models/runtime/runtime.js';
import { nvidiaGpus } from '../models/runtime/nvidia-smi.js';
import type { WorkerStatus } from '../common/worker-protocol.js';
import { createApp, type HealthInfo } from './app.js';
import { generateToken } from './auth.js';
import { serverEta } from './jobs/eta.js';
import { JobService } from './jobs/job-service.js';
import { JobStore } from './jobs/job-store.js';
import { discoverModels, type ModelEntry } from './model-manager.js';
import { checkFfmpeg } from '../media/ffmpeg.js';
import { checkPortFree, lockOutputFolder, type FolderLock } from './output-lock.js';
import { isDriveFolder, prepareSaveFolder } from './save-folder.js';
import { CloudflaredTunnel, LocalTunnel } from './tunnel.js';
import { WorkerPool } from './workers/pool.js';
import { QueueFront, boxWorkers } from './queue/front.js';
import { redisUrlSchema } from './queue/redis-link.js';
import { workerSlots } from './workers/slots.js';
import { whole } from '../common/setting-table.js';

/** A number as typed on the command line (a string) or given by code; "" and words are not numbers. */
const numberOf = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (typeof v === 'string' ? (v.trim() === '' ? Number.NaN : Number(v)) : v), schema);
/** A whole number from `min` up, with one plain message for every way of missing it. */
const atLeast = (min: number) => {
  const error = `must be a whole number, at least ${min}`;
  return numberOf(z.number({ error }).int({ error }).min(min, { error }).max(Number.MAX_SAFE_INTEGER, { error }));
};

const GIGABYTES = 'must be a number of gigabytes above 0, at most 1000000';

/**
 * The server's options as code gives them (tests) and as cli/start.ts reads them from the command
 * line (every message names the option without a subject: "--port must be …").
 */
export const optionsSchema = z.object({
  model: z.string().optional(),
  port: numberOf(whole(0, 65535).schema).default(7860),
  host: z.string().default('127.0.0.1'),
  outputDir: z.string().default(join(PROJECT_ROOT, 'data', 'outputs')),
  saveDir: z.string().optional(),
  token: z.string().min(8, 'needs at least 8 characters').optional(),
  provider: z.enum(providers, { error: `must be one of ${providers.join(', ')}` }).default('auto'),
  gpuMemory: z.enum(gpuMemoryModes, { error: `must be one of ${gpuMemoryModes.join(', ')}` }).default('auto'),
  gpus: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'needs card numbers separated by commas, e.g. 0,1')
    .transform((s) => [...new Set(s.split(',').map(Number))])
    .optional(),
  workers: numberOf(whole(1, 16).schema).optional(),
  /** For tests: how long a request body may take to arrive. */
  requestTimeoutMs: z.number().int().min(1).optional(),
  /** How long a cancel waits for the worker to stop between steps before killing it. */
  cancelGraceMs: z.number().int().min(0).optional(),
  share: z.enum(['localtunnel', 'cloudflared'], { error: 'must be cloudflared, or nothing for localtunnel' }).optional(),
  trustProxy: z.boolean().default(false),
  sharedHistory: z.boolean().default(false),
  keepJobs: atLeast(1).optional(),
  jobStorage: numberOf(z.number({ error: GIGABYTES }).positive({ error: GIGABYTES }).max(1e6, { error: GIGABYTES })).default(20),
  jobRateLimit: numberOf(whole(1, 100_000).schema).default(30),
  /** For tests: another localtunnel-protocol server and password endpoint. */
  tunnelHost: z.string().optional(),
  tunnelPasswordUrl: z.string().optional(),
  /** Where installed models are looked for (tests use their own). */
  modelsRoot: z.string().optional(),
  queue: redisUrlSchema.optional(),
});
export type ServerOptions = z.input<typeof optionsSchema>;

export interface RunningServer {
  url: string;
  port: number;
  token?: string;
  service: JobService;
  close(): Promise<void>;
}

export async function startServer(input: ServerOptions, log: (line: string) => void = console.log): Promise<RunningServer> {
  const opts = optionsSchema.parse(input);
  const local = opts.host === '127.0.0.1' || opts.host === 'localhost' || opts.host === '::1';
  // Before anything is read or written: a second server on the same folder or port stops here.
  const lock = lockOutputFolder(opts.outputDir, `http://${local ? '127.0.0.1' : opts.host}:${opts.port}/`);
  try {
    await checkPortFree(opts.port, opts.host);
    return await startLocked(opts, local, lock, log);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(opts: z.output<typeof optionsSchema>, local: boolean, lock: FolderLock, log: (line: string) => void): Promise<RunningServer> {
  let modelPath = opts.model ?? defaultModelDir();
  let demo = false;
  if (!existsSync(modelPath)) {
    if (opts.model) openModelDir(modelPath); // throws with what is missing
    log(`no model at ${modelPath}: starting with the tiny DEMO model (random weights, output is noise). Run npm run setup to download SVD-XT.`);
    modelPath = DEMO_MODEL;
    demo = true;
  }
  openModelDir(modelPath);
  const ffmpegError = await checkFfmpeg();
  if (ffmpegError) log(`warning: ${ffmpegError}. Videos cannot be written until ffmpeg is installed (Debian/Ubuntu/Colab: apt-get install -y ffmpeg).`);

  if (opts.saveDir) for (const line of prepareSaveFolder(opts.saveDir)) log(line);
  const models = discoverModels({ path: modelPath, demo }, opts.modelsRoot);
  // With --queue, the worker boxes run the jobs: this server runs its own only when asked to.
  const queued = opts.queue ? new QueueFront({ url: opts.queue, defaultModel: models[0]!.name, log }) : undefined;
  const localWorkers = !queued || !!opts.gpus || !!opts.workers;
  const gpus = localWorkers && (opts.gpus || (!opts.workers && opts.provider !== 'cpu')) ? await nvidiaGpus(10_000) : [];
  const slots = localWorkers
    ? workerSlots(
        { gpus: opts.gpus, workers: opts.workers, provider: opts.provider },
        gpus.map((g) => g.index),
      )
    : [];
  if (slots.length) log(`starting ${slots.length} inference worker${slots.length > 1 ? 's' : ''}: ${slots.map((s) => s.name).join(', ')}`);
  const pool = slots.length
    ? new WorkerPool({
        slots,
        runtime: { provider: opts.provider, gpuMemory: opts.gpuMemory },
        models: models.map(({ name, path, interpolator }) => ({ name, path, interpolator })),
        log,
        cancelGraceMs: opts.cancelGraceMs,
      })
    : undefined;
  pool?.start();

  const store = new JobStore(opts.outputDir);
  store.load((line) => log(`warning: ${line}`), { keepUnfinished: !!queued });
  const service = new JobService({
    store,
    workers: queued ? undefined : pool,
    queue: queued?.factory,
    saveDir: opts.saveDir,
    keepJobs: opts.keepJobs,
    storageBytes: opts.jobStorage * 1e9,
    eta: serverEta(opts.outputDir, { slots, gpus, models }),
  });
  if (queued) {
    await queued.start();
    log(`queue: jobs go to the worker boxes through ${queued.label}`);
  }
  const pruned = service.prune();
  if (pruned) log(`deleted the ${pruned} oldest job${pruned > 1 ? 's' : ''} beyond --keep-jobs ${opts.keepJobs}`);
  service.resumeSaves();
  const fixed = {
    models: models.map(({ name, demo: d, frames, fast, interpolator }) => ({ name, demo: d, frames, fast, interpolator: !!interpolator })),
    ffmpeg: { ok: !ffmpegError, error: ffmpegError },
    saveDir: !!opts.saveDir,
    saveDirOnDrive: !!opts.saveDir && isDriveFolder(opts.saveDir),
  };
  // Worker boxes prove themselves with the token, so a server with a queue always has one.
  const token = opts.token ?? (local && !opts.share && !queued ? undefined : generateToken());
  const history = store.list();
  const ownerless = history.filter((j) => j.owner === undefined).length;
  if (ownerless && !opts.sharedHistory)
    log(
      `${ownerless} earlier job${ownerless > 1 ? 's have' : ' has'} no owner (made before each browser had its own history): ${token ? 'everyone with the access token' : 'every browser'} sees ${ownerless > 1 ? 'them' : 'it'}`,
    );
  const { server, io } = createApp({
    service,
    sharedHistory: opts.sharedHistory,
    requestTimeoutMs: opts.requestTimeoutMs,
    // No token: a local server; only its loopback names, so a DNS-rebinding page cannot reach it.
    // Behind the user's own reverse proxy (--trust-proxy) the Host is the proxy's public name.
    allowedHosts: token || opts.trustProxy ? undefined : ['localhost', '127.0.0.1', '[::1]'],
    modelNames: models.map((m) => m.name),
    interpolatingModels: models.filter((m) => m.interpolator).map((m) => m.name),
    token,
    trustProxy: opts.trustProxy ? 'proxy' : opts.share ? 'tunnel' : 'none',
    jobRateLimit: opts.jobRateLimit,
    clientDir: join(PROJECT_ROOT, 'client', 'dist'),
    health: async () => {
      const [[first], boxes] = await Promise.all([localWorkers ? nvidiaGpus(3000) : [], queued?.boxes()]);
      const workers = [...(pool?.status() ?? []), ...boxWorkers(boxes ?? [])];
      return { ...fixed, ...workersSummary(workers, models), gpu: first && { name: first.name, memoryTotalMiB: first.memoryTotalMiB, memoryUsedMiB: first.memoryUsedMiB }, boxes };
    },
    moreRoutes: queued ? [queued.routes(service)] : [],
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port, opts.host, () => ok());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const url = `http://${local ? '127.0.0.1' : opts.host}:${port}/`;
  lock.describe({ url });
  log(`svd-studio listening on ${url}${token ? `?token=${token}` : ''} (${history.length} earlier jobs)`);
  if (token) log(`access token: ${token}`);
  if (queued && pool) {
    await queued.startLocalBox({
      pool,
      models: models.map((m) => m.name),
      cards: gpus.filter((c) => slots.some((s) => s.deviceId === c.index)).map((c) => ({ index: c.index, name: c.name, memoryTotalMiB: c.memoryTotalMiB })),
      server: url,
      token: token!,
      workDir: join(opts.outputDir, '.box'),
    });
  }
  let tunnel: LocalTunnel | CloudflaredTunnel | undefined;
  if (opts.share) {
    tunnel =
      opts.share === 'cloudflared'
        ? new CloudflaredTunnel(port)
        : new LocalTunnel({ localPort: port, host: opts.tunnelHost, passwordUrl: opts.tunnelPasswordUrl ?? (opts.tunnelHost ? undefined : 'https://loca.lt/mytunnelpassword') });
    tunnel.on('ready', ({ url: link, password }) => {
      lock.describe({ link: link.replace(/\/$/, '') });
      log(`public link: ${link.replace(/\/$/, '')}/?token=${token}`);
      if (password) log(`tunnel password: ${password}`);
      log(`access token: ${token}`);
    });
    tunnel.on('down', (reason) => log(`public link lost (${reason}); opening a new one…`));
    tunnel.start();
  }
  return {
    url,
    port,
    token,
    service,
    close: async () => {
      await queued?.close();
      const queueClosed = service.close();
      tunnel?.close();
      io.close();
      await new Promise<void>((ok) => server.close(() => ok()));
      await service.idle();
      await queueClosed;
      await pool?.close();
      lock.release();
    },
  };
}

/**
 * /api/health's model, status and provider from the workers: ready when any worker can take a job,
 * an error only when every worker failed; the model is the one the first worker holds.
 */
function workersSummary(workers: WorkerStatus[], models: ModelEntry[]): Pick<HealthInfo, 'model' | 'status' | 'provider' | 'error' | 'workers'> {
  const entry = models.find((m) => m.name === workers[0]?.model) ?? models[0]!;
  const ready = workers.find((w) => w.state === 'ready');
  // No worker at all (a queue whose boxes have not reported yet) is loading, not failed.
  const failed = workers.length > 0 && workers.every((w) => w.state === 'error');
  return {
    model: { path: entry.path, demo: entry.demo, frames: entry.frames },
    status: ready ? 'ready' : failed ? 'error' : 'loading',
    provider: ready?.provider,
    error: failed ? workers[0]?.message : undefined,
    workers,
  };
}
