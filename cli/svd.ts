// svd-studio command line: `npm run svd -- <command> [options]`.
import { convertModel, defaultCacheDir, type ConvertEvent } from '../models/convert.js';
import { NETWORKS, type NetworkName } from '../models/build.js';
import { parseCommandArgs, parseDType } from './cli-args.js';
import { runGenerate, GENERATE_HELP } from './generate-command.js';
import { UsageError } from './usage-error.js';
import { examineMachine, formatDoctor } from '../models/runtime/doctor.js';

const CONVERT_HELP = `  convert --model DIR    build the ONNX networks of a diffusers SVD repository into the cache
          [--dtype fp16|fp32] (default fp16; the VAE encoder stays fp32 as in diffusers)
          [--attention mha|matmul] (default mha: fused attention, never the full score matrix)
          [--networks unet,vae_decoder,...] [--cache DIR] (default ${defaultCacheDir()})
`;

const DOCTOR_HELP = `  doctor [--json]        what this machine is (driver, each card), which onnxruntime build and
                         provider svd-studio runs here and why, the CUDA libraries found and
                         missing, and what to do (--json: one JSON object)
`;

const HELP = `usage: npm run svd -- <command> [options]   (npm run svd -- <command> --help for one command)

commands:
${CONVERT_HELP}${GENERATE_HELP}${DOCTOR_HELP}`;

function parseNetworks(v: string | undefined): NetworkName[] | undefined {
  if (!v) return undefined;
  const names = v.split(',').map((s) => s.trim());
  for (const n of names) if (!(NETWORKS as readonly string[]).includes(n)) throw new UsageError(`unknown network "${n}"; choose from ${NETWORKS.join(', ')}`);
  return names as NetworkName[];
}

function progressPrinter() {
  let last = 0;
  return (e: ConvertEvent) => {
    switch (e.type) {
      case 'cached':
        console.error(`${e.network}: cached ${e.path}`);
        break;
      case 'building':
        console.error(`${e.network}: building`);
        break;
      case 'progress': {
        const now = Date.now();
        if (process.stderr.isTTY && now - last > 200) {
          last = now;
          process.stderr.write(`\r${e.network}: ${(e.written / 2 ** 20).toFixed(0)} / ${(e.total / 2 ** 20).toFixed(0)} MiB written`);
        }
        break;
      }
      case 'built':
        if (process.stderr.isTTY) process.stderr.write('\n');
        console.error(`${e.network}: built ${e.path} (${(e.bytes / 2 ** 20).toFixed(1)} MiB, ${e.seconds.toFixed(1)} s)`);
        break;
    }
  };
}

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help') {
    console.log(HELP);
    return;
  }
  if (command === 'convert') {
    const opt = { type: 'string' } as const;
    const values = parseCommandArgs('convert', rest, { model: opt, dtype: opt, attention: opt, networks: opt, cache: opt });
    if (values.help) {
      console.log(`usage: npm run svd -- convert [options]\n\n${CONVERT_HELP}`);
      return;
    }
    if (!values.model) throw new UsageError('convert needs --model DIR (a diffusers SVD repository)');
    const attention = values.attention ?? 'mha';
    if (attention !== 'mha' && attention !== 'matmul') throw new UsageError(`--attention must be mha or matmul, got "${attention}"`);
    const { files } = convertModel({
      model: values.model,
      dtype: parseDType(values.dtype),
      attention,
      networks: parseNetworks(values.networks),
      cacheDir: values.cache,
      onEvent: progressPrinter(),
    });
    console.log(JSON.stringify(files, null, 2));
    return;
  }
  if (command === 'generate') return runGenerate(rest);
  if (command === 'doctor') {
    const values = parseCommandArgs('doctor', rest, { json: { type: 'boolean' } });
    if (values.help) {
      console.log(`usage: npm run svd -- doctor [--json]\n\n${DOCTOR_HELP}`);
      return;
    }
    const report = examineMachine();
    console.log(values.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
    return;
  }
  throw new UsageError(`unknown command "${command}"\n\n${HELP}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error;
  console.error(`error: ${e.message}`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
});
