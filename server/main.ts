// `npm start -- [options]`: the svd-studio server (page, HTTP API, socket.io, one GPU queue).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { openModelDir } from '../models/model-dir.js';
import { defaultModelDir } from '../models/paths.js';
import { gpuMemoryModes, nvidiaGpu, providers, type GpuMemoryMode, type ProviderChoice } from '../models/pipeline/runtime.js';
import { createApp, type HealthInfo } from './app.js';
import { generateToken } from './auth.js';
import { installLastResort } from './last-resort.js';
import { JobService } from './jobs/job-service.js';
import { JobStore } from './jobs/job-store.js';
import { discoverModels, ModelManager } from './model-manager.js';
import { checkFfmpeg } from './media/ffmpeg.js';
import { prepareSaveFolder } from './media/save-folder.js';
import { CloudflaredTunnel, LocalTunnel } from './tunnel.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEMO_MODEL = join(PROJECT_ROOT, 'test', 'fixtures', 'svd-tiny', 'model');

const HELP = `usage: npm start -- [options]
  --model DIR        diffusers SVD repository (default ${defaultModelDir()}; the tiny demo model when absent)
  --port N           default 7860
  --host H           default 127.0.0.1 (0.0.0.0 to listen on every interface)
  --output-dir DIR   job folders (default ${join(PROJECT_ROOT, 'data', 'outputs')})
  --save-dir DIR     also copy finished videos here as 000001.mp4, ... (e.g. a mounted Google Drive folder)
  --token T          require this access token (generated when --host is not local and none is given)
  --provider P       auto | cuda | webgpu | cpu (default auto)
  --gpu-memory M     WebGPU: auto | fast (~40 GB, 2x faster) | lean (~16-24 GB) (default auto: fast on 48 GB+ cards)
  --share [cloudflared]  open a public link (localtunnel by default, or a cloudflared binary);
                     prints the link, the tunnel password and the access token
  --job-rate-limit N jobs one client may submit per minute (default 30)
  --trust-proxy      behind your own reverse proxy: take the client's address from the last
                     X-Forwarded-For entry (for rate limits); off by default, and --share
                     trusts only its tunnel's header, on connections from this machine
`;

const optionsSchema = z.object({
  model: z.string().optional(),
  port: z.coerce.number().int().min(0).max(65535).default(7860),
  host: z.string().default('127.0.0.1'),
  outputDir: z.string().default(join(PROJECT_ROOT, 'data', 'outputs')),
  saveDir: z.string().optional(),
  token: z.string().min(8, 'the token needs at least 8 characters').optional(),
  provider: z.enum(providers).default('auto'),
  gpuMemory: z.enum(gpuMemoryModes).default('auto'),
  share: z.enum(['localtunnel', 'cloudflared']).optional(),
  trustProxy: z.boolean().default(false),
  jobRateLimit: z.coerce.number().int().min(1).max(100_000).default(30),
  /** For tests: another localtunnel-protocol server and password endpoint. */
  tunnelHost: z.string().optional(),
  tunnelPasswordUrl: z.string().optional(),
  /** Where installed models are looked for (tests use their own). */
  modelsRoot: z.string().optional(),
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
  const health: HealthInfo = {
    model: { path: modelPath, demo, frames: models[0]!.frames },
    models: models.map(({ name, demo: d, frames }) => ({ name, demo: d, frames })),
    status: 'loading',
    ffmpeg: { ok: !ffmpegError, error: ffmpegError },
    saveDir: !!opts.saveDir,
  };
  const manager = new ModelManager(
    models,
    { provider: opts.provider as ProviderChoice, gpuMemory: opts.gpuMemory as GpuMemoryMode },
    (name, pipeline) => {
      const entry = models.find((m) => m.name === name)!;
      Object.assign(health, { status: 'loading', error: undefined, provider: undefined, model: { path: entry.path, demo: entry.demo, frames: entry.frames } });
      pipeline.then(
        (p) => {
          if (manager.activeName !== name) return;
          health.status = 'ready';
          health.provider = `${p.provider} (${p.dtype}${p.gpuMemory ? `, ${p.gpuMemory} memory mode` : ''})`;
          log(`model ${name} ready on ${health.provider}`);
        },
        (err: Error) => {
          if (manager.activeName !== name) return;
          health.status = 'error';
          health.error = err.message;
          log(`error: the model could not be loaded: ${err.message}`);
        },
      );
    },
    log,
  );
  void manager.get().catch(() => {});

  const store = new JobStore(opts.outputDir);
  const history = store.load((line) => log(`warning: ${line}`));
  const service = new JobService({ store, pipeline: (name) => manager.get(name), saveDir: opts.saveDir });
  service.resumeSaves();
  const local = opts.host === '127.0.0.1' || opts.host === 'localhost' || opts.host === '::1';
  const token = opts.token ?? (local && !opts.share ? undefined : generateToken());
  const { server, io } = createApp({
    service,
    modelNames: models.map((m) => m.name),
    token,
    trustProxy: opts.trustProxy ? 'proxy' : opts.share ? 'tunnel' : 'none',
    jobRateLimit: opts.jobRateLimit,
    clientDir: join(PROJECT_ROOT, 'client', 'dist'),
    health: async () => ({ ...health, gpu: await nvidiaGpu(3000) }),
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port, opts.host, () => ok());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const url = `http://${local ? '127.0.0.1' : opts.host}:${port}/`;
  log(`svd-studio listening on ${url}${token ? `?token=${token}` : ''} (${history.length} earlier jobs)`);
  if (token) log(`access token: ${token}`);
  let tunnel: LocalTunnel | CloudflaredTunnel | undefined;
  if (opts.share) {
    tunnel =
      opts.share === 'cloudflared'
        ? new CloudflaredTunnel(port)
        : new LocalTunnel({ localPort: port, host: opts.tunnelHost, passwordUrl: opts.tunnelPasswordUrl ?? (opts.tunnelHost ? undefined : 'https://loca.lt/mytunnelpassword') });
    tunnel.on('ready', ({ url: link, password }) => {
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
      tunnel?.close();
      io.close();
      await new Promise<void>((ok) => server.close(() => ok()));
      await service.idle();
      await manager.release();
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // `--share` alone means localtunnel; `--share cloudflared` picks the other.
  const argv = process.argv.slice(2);
  const shareAt = argv.indexOf('--share');
  let share: string | undefined;
  if (shareAt >= 0) {
    const next = argv[shareAt + 1];
    share = next && !next.startsWith('--') ? next : 'localtunnel';
    argv.splice(shareAt, next && !next.startsWith('--') ? 2 : 1);
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, 'output-dir': { type: 'string' },
      'save-dir': { type: 'string' }, token: { type: 'string' }, provider: { type: 'string' }, 'gpu-memory': { type: 'string' }, 'trust-proxy': { type: 'boolean' }, 'job-rate-limit': { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
  } else {
    const parsed = optionsSchema.safeParse({ model: values.model, port: values.port, host: values.host, outputDir: values['output-dir'], saveDir: values['save-dir'], token: values.token, provider: values.provider, gpuMemory: values['gpu-memory'], trustProxy: values['trust-proxy'], jobRateLimit: values['job-rate-limit'], share });
    if (!parsed.success) {
      console.error(`error: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}\n\n${HELP}`);
      process.exit(2);
    }
    installLastResort();
    startServer(parsed.data).then(
      (s) => {
        const stop = () => void s.close().then(() => process.exit(0));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      },
      (err: Error) => {
        console.error(`error: ${err.message}`);
        process.exit(1);
      },
    );
  }
}
