// `npm start -- [options]`: the server's options read with the same parser and messages as the
// `svd` commands (cli-args.ts), checked by the server's own schema, then the server started.
// Every wrong option ends here with one plain line naming it, and exit code 1.
import { join } from 'node:path';
import { formatError } from '../common/messages.js';
import { PROJECT_ROOT, defaultModelDir } from '../models/paths.js';
import { installLastResort } from '../server/last-resort.js';
import { optionsSchema, startServer, type ServerOptions } from '../server/main.js';
import { helpColumns, parseCommandArgs } from './cli-args.js';
import { UsageError } from './usage-error.js';

/** Each option once: its value's form (none: a switch) and what it does. The key is the option's name in ServerOptions. */
const OPTIONS: Partial<Record<keyof ServerOptions, { value?: string; help: string }>> = {
  model: { value: 'DIR', help: `diffusers SVD repository (default ${defaultModelDir()}; the tiny demo model when absent)` },
  port: { value: 'N', help: 'default 7860 (0: any free port)' },
  host: { value: 'H', help: 'default 127.0.0.1 (0.0.0.0 to listen on every interface)' },
  outputDir: { value: 'DIR', help: `job folders (default ${join(PROJECT_ROOT, 'data', 'outputs')})` },
  saveDir: { value: 'DIR', help: 'also copy finished videos here as 000001.mp4, ... (e.g. a mounted Google Drive folder)' },
  token: { value: 'T', help: 'require this access token (generated when --host is not local and none is given)' },
  provider: { value: 'P', help: 'auto | cuda | webgpu | cpu (default auto)' },
  gpuMemory: { value: 'M', help: 'WebGPU: auto | fast (~40 GB, 2x faster) | lean (~16-24 GB) (default auto: fast on 48 GB+ cards)' },
  gpus: { value: '0,1', help: 'one inference worker per listed NVIDIA card (default: every card nvidia-smi lists, else one worker)' },
  workers: { value: 'N', help: 'N inference workers without a card (CPU)' },
  share: { value: '[cloudflared]', help: 'open a public link (localtunnel by default, or a cloudflared binary); prints the link, the tunnel password and the access token' },
  jobRateLimit: { value: 'N', help: 'jobs one client may submit per minute (default 30)' },
  keepJobs: { value: 'N', help: 'keep the newest N ended jobs; older ones are deleted with their files (copies in --save-dir stay) (default: keep all)' },
  jobStorage: { value: 'GB', help: 'the job folders, inputs included, may hold this much; new jobs are refused beyond it until old ones are deleted (default 20)' },
  queue: {
    value: 'redis://HOST:PORT[/DB]',
    help: 'several GPU boxes behind this page: jobs go into a BullMQ queue in that Redis and worker boxes (npm run worker) take them; this server runs workers of its own only when --gpus or --workers asks (README: Several GPU boxes)',
  },
  sharedHistory: { help: 'every visitor sees and controls every job (one person on several devices); by default each browser sees only its own jobs' },
  trustProxy: {
    help: "behind your own reverse proxy: take the client's address from the last X-Forwarded-For entry (for rate limits); off by default, and --share trusts only its tunnel's header, on connections from this machine",
  },
};

const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
const options = Object.entries(OPTIONS) as [keyof ServerOptions, { value?: string; help: string }][];

const START_HELP = `usage: npm start -- [options]\n${helpColumns(options.map(([key, o]) => [`${flagOf(key)}${o.value ? ` ${o.value}` : ''}`, o.help]))}\n`;

/** The options as ServerOptions, or a UsageError naming the first wrong one. */
function readStartOptions(argv: string[]): { help: true } | { help: false; options: ServerOptions } {
  // `--share` alone means localtunnel; `--share cloudflared` picks the other.
  const args = argv.filter((a) => !a.startsWith('--share='));
  let share = argv.find((a) => a.startsWith('--share='))?.slice('--share='.length);
  const shareAt = args.indexOf('--share');
  if (shareAt >= 0) {
    const next = args[shareAt + 1];
    const named = next !== undefined && !next.startsWith('--');
    share = named ? next : 'localtunnel';
    args.splice(shareAt, named ? 2 : 1);
  }
  const parseable = Object.fromEntries(options.filter(([key]) => key !== 'share').map(([key, o]) => [flagOf(key).slice(2), { type: o.value ? 'string' : 'boolean' } as const]));
  const values = parseCommandArgs('npm start --', args, parseable) as Record<string, string | boolean | undefined>;
  if (values.help) return { help: true };
  const input = Object.fromEntries(options.map(([key]) => [key, key === 'share' ? share : values[flagOf(key).slice(2)]]));
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) throw new UsageError(`${formatError(parsed.error, flagOf)} (npm start -- --help lists the options)`);
  return { help: false, options: input as ServerOptions };
}

function main(): void {
  let read: ReturnType<typeof readStartOptions>;
  try {
    read = readStartOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
  if (read.help) {
    console.log(START_HELP);
    return;
  }
  installLastResort();
  startServer(read.options).then(
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

main();
