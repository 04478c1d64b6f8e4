// `npm run worker -- --queue redis://HOST:PORT --server URL --token T [--gpus 0,1 | --workers N]`:
// a GPU box behind a front server started with --queue (server/queue/box-agent.ts). It connects
// out to Redis and to the front server only; it needs no open port.
import { hostname } from 'node:os';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { formatError } from '../common/messages.js';
import { checkFfmpeg } from '../media/ffmpeg.js';
import { openModelDir } from '../models/model-dir.js';
import { DEMO_MODEL, PROJECT_ROOT, defaultModelDir } from '../models/paths.js';
import { gpuMemoryModes, providers } from '../models/runtime/runtime.js';
import { nvidiaGpus } from '../models/runtime/nvidia-smi.js';
import { installLastResort } from './last-resort.js';
import { discoverModels } from './model-manager.js';
import { FolderInUseError, type FolderLock, lockOutputFolder } from './output-lock.js';
import { BoxAgent } from './queue/box-agent.js';
import { redisUrlSchema } from './queue/redis-link.js';
import { WorkerPool } from './workers/pool.js';
import { workerSlots } from './workers/slots.js';

const HELP = `usage: npm run worker -- --queue redis://HOST:PORT[/DB] --server URL --token T [options]
  a worker box: takes jobs from the front server's queue (npm start -- --queue ...) and runs them
  on this machine's cards; connects out to Redis and the front server, needs no open port.
  --queue URL        the Redis the front server was started with (redis://:PASSWORD@HOST:PORT/DB)
  --server URL       the front server, as this box reaches it (e.g. http://10.0.0.5:7860/)
  --token T          the front server's access token (it prints it at start)
  --name NAME        this box's name on the page (default: the host name; unique per box)
  --gpus 0,1         one inference worker per listed NVIDIA card (default: every card, else one)
  --workers N        N inference workers without a card (CPU)
  --model DIR        diffusers SVD repository (default ${defaultModelDir()}; the demo model when absent);
                     the box must have every model the page offers, under the same names
  --provider P       auto | cuda | webgpu | cpu (default auto)
  --gpu-memory M     WebGPU: auto | fast | lean (default auto)
  --work-dir DIR     where jobs stay while they run here (default ${join(PROJECT_ROOT, 'data', 'box')})
  --lock-seconds N   a box that stops answering for this long loses its job to another box (default 30)
`;

const optionsSchema = z.object({
  queue: redisUrlSchema,
  server: z.url({ protocol: /^https?$/, error: 'give the front server as http://HOST:PORT/ (or https://)' }),
  token: z.string({ error: 'the front server prints its access token at start: pass it as --token' }).min(8, 'the token needs at least 8 characters'),
  name: z
    .string()
    .regex(/^[\w.-]{1,64}$/, 'use 1–64 letters, digits, ".", "-" or "_"')
    .default(
      hostname()
        .replace(/[^\w.-]/g, '-')
        .slice(0, 64) || 'box',
    ),
  gpus: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'give card numbers separated by commas, e.g. 0,1')
    .transform((s) => [...new Set(s.split(',').map(Number))])
    .optional(),
  workers: z.coerce.number().int().min(1).max(16).optional(),
  model: z.string().optional(),
  provider: z.enum(providers).default('auto'),
  gpuMemory: z.enum(gpuMemoryModes).default('auto'),
  workDir: z.string().default(join(PROJECT_ROOT, 'data', 'box')),
  lockSeconds: z.coerce.number().min(1).max(3600).default(30),
});
export type WorkerBoxOptions = z.input<typeof optionsSchema>;

export async function startWorkerBox(input: WorkerBoxOptions, log: (line: string) => void = console.log): Promise<BoxAgent> {
  const opts = optionsSchema.parse(input);
  const ffmpegError = await checkFfmpeg();
  if (ffmpegError) throw new Error(`${ffmpegError}: a worker box writes the videos itself (Debian/Ubuntu/Colab: apt-get install -y ffmpeg)`);
  let modelPath = opts.model ?? defaultModelDir();
  let demo = false;
  if (!existsSync(modelPath)) {
    if (opts.model) openModelDir(modelPath); // throws with what is missing
    log(`no model at ${modelPath}: this box runs the tiny DEMO model (random weights). Run npm run setup to download SVD-XT.`);
    modelPath = DEMO_MODEL;
    demo = true;
  }
  const models = discoverModels({ path: modelPath, demo });
  const cards = opts.gpus || (!opts.workers && opts.provider !== 'cpu') ? await nvidiaGpus(10_000) : [];
  const slots = workerSlots(
    { gpus: opts.gpus, workers: opts.workers, provider: opts.provider },
    cards.map((g) => g.index),
  );
  // One box per folder: its scratch files are its own, and whatever a killed box left is cleared.
  let lock: FolderLock;
  try {
    lock = lockOutputFolder(opts.workDir, `worker box ${opts.name}`);
  } catch (err) {
    if (err instanceof FolderInUseError) throw new Error(`${opts.workDir} is in use by another box or server (${err.message}); give each box its own --work-dir`);
    throw err;
  }
  rmSync(join(opts.workDir, 'jobs'), { recursive: true, force: true });
  const pool = new WorkerPool({ slots, runtime: { provider: opts.provider, gpuMemory: opts.gpuMemory }, models: models.map(({ name, path, interpolator }) => ({ name, path, interpolator })), log });
  pool.start();
  const agent = new BoxAgent({
    redisUrl: opts.queue,
    server: opts.server,
    token: opts.token,
    name: opts.name,
    pool,
    models: models.map((m) => m.name),
    cards: cards.filter((c) => slots.some((s) => s.deviceId === c.index)).map((c) => ({ index: c.index, name: c.name, memoryTotalMiB: c.memoryTotalMiB })),
    workDir: join(opts.workDir, 'jobs'),
    lockMs: opts.lockSeconds * 1000,
    log,
  });
  const close = agent.close.bind(agent);
  agent.close = async (wait = true) => {
    await close(wait);
    await pool.close();
    lock.release();
  };
  try {
    await agent.start();
  } catch (err) {
    await agent.close(false);
    throw err;
  }
  return agent;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      queue: { type: 'string' },
      server: { type: 'string' },
      token: { type: 'string' },
      name: { type: 'string' },
      gpus: { type: 'string' },
      workers: { type: 'string' },
      model: { type: 'string' },
      provider: { type: 'string' },
      'gpu-memory': { type: 'string' },
      'work-dir': { type: 'string' },
      'lock-seconds': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const input = {
    queue: values.queue,
    server: values.server,
    token: values.token,
    name: values.name,
    gpus: values.gpus,
    workers: values.workers,
    model: values.model,
    provider: values.provider,
    gpuMemory: values['gpu-memory'],
    workDir: values['work-dir'],
    lockSeconds: values['lock-seconds'],
  };
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) {
    console.error(`error: ${formatError(parsed.error, (key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)}\n\n${HELP}`);
    process.exit(2);
  }
  installLastResort();
  startWorkerBox(input as WorkerBoxOptions).then(
    (agent) => {
      let stopping = false;
      const stop = () => {
        if (stopping) {
          // Asked twice: go now; the stalled-job check hands the running jobs to another box.
          console.log('stopping now');
          process.exit(1);
        }
        stopping = true;
        console.log('finishing the jobs running here (Ctrl+C again to stop now and leave them to another box)');
        void agent.close(true).then(() => process.exit(0));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
    (err: Error) => {
      console.error(`error: ${err.message}`);
      process.exit(1);
    },
  );
}
