// `npm run setup -- --model svd-xt|svd|animatelcm-svd-xt`: checks the machine, downloads the model's
// fp16 files from the Hugging Face hub (AnimateLCM: SVD-XT's parts and its distilled UNet, assembled), converts them to ONNX for the best provider here, and runs a short
// self-test. Running it again only verifies. `--interpolator rife` installs the frame interpolator.
import { queryGpus } from '../models/runtime/nvidia-smi.js';
import { mkdirSync, statfsSync } from 'node:fs';
import { convertModel } from '../models/convert.js';
import { downloadAnimateLcm } from '../models/download/animatelcm.js';
import { isModelName, MODEL_NAMES } from '../models/download/catalog.js';
import { downloadModel, type DownloadProgress, HubError } from '../models/download/hub.js';
import { installRife, RIFE_RELEASE } from '../models/download/rife-weights.js';
import { convertInterpolator } from '../models/interpolator.js';
import { interpolatorDir, modelDirFor } from '../models/paths.js';
import { FrameInterpolator } from '../models/pipeline/interpolate.js';
import { SvdPipeline } from '../models/pipeline/pipeline.js';
import { describeResolution, resolveProvider } from '../models/runtime/runtime.js';
import { parseSettings } from '../common/settings.js';
import { parseCommandArgs } from './cli-args.js';
import { UsageError } from './usage-error.js';

const HELP = `usage: npm run setup -- [--model svd-xt|svd|animatelcm-svd-xt] [--repo owner/name] [--dir DIR] [--interpolator rife] [--skip-self-test]
  --model M          which model to install (default svd-xt, unless only --interpolator is given; animatelcm-svd-xt:
                     4-step videos, SVD-XT's parts with AnimateLCM's distilled UNet)
  --interpolator rife  install the frame interpolator (RIFE ${RIFE_RELEASE.version}, ${(RIFE_RELEASE.size / 1e6).toFixed(0)} MB) for the interpolate setting
  --repo owner/name  another Hugging Face repository of the same layout
  --dir DIR          where to put it (default ~/.cache/svd-studio/models/<name>)
  --skip-self-test   do not run the short generation at the end
HF_TOKEN (gated repositories) and HF_ENDPOINT (a mirror) are read from the environment.`;

function readArgs() {
  try {
    return parseCommandArgs('npm run setup --', process.argv.slice(2), {
      model: { type: 'string' },
      repo: { type: 'string' },
      dir: { type: 'string' },
      interpolator: { type: 'string' },
      'skip-self-test': { type: 'boolean' },
    });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}`);
    process.exit(2);
  }
}
const args = readArgs();
// `--interpolator rife` alone installs only the interpolator; with --model or --repo, both.
const installModel = !args.interpolator || args.model !== undefined || args.repo !== undefined;
const values = { model: 'svd-xt', ...args };
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(1);
}

const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;

async function main() {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major < 20 || (major === 20 && minor < 19)) fail(`Node ${process.versions.node} is too old: install Node 20.19 or newer`);
  if (values.interpolator !== undefined && values.interpolator !== 'rife') fail(`--interpolator must be rife, got "${values.interpolator}"`);
  if (installModel) await setupModel();
  if (values.interpolator) await setupInterpolator();
}

async function setupInterpolator() {
  const dest = interpolatorDir();
  console.log(`frame interpolator: RIFE ${RIFE_RELEASE.version} into ${dest}`);
  const installed = await installRife(dest, { onProgress: downloadProgress() });
  console.log(`installed ${installed.tensors} tensors (${(installed.parameters / 1e6).toFixed(1)} M parameters)`);
  const { path, built } = convertInterpolator(dest);
  console.log(`${built ? 'built' : 'cached'}    ${path}`);
  if (!values['skip-self-test']) {
    console.log('self-test: one frame between two 128x128 frames');
    const interpolator = await FrameInterpolator.load(dest, { provider: (await resolveProvider('auto')).provider });
    try {
      const frames = new Uint8Array(2 * 128 * 128 * 3);
      frames.fill(200, 128 * 128 * 3);
      const out = await interpolator.interpolate({ rgb: frames, frameCount: 2, width: 128, height: 128 }, 2);
      if (out.frameCount !== 3) fail(`the self-test made ${out.frameCount} frames instead of 3`);
    } finally {
      await interpolator.release();
    }
    console.log('self-test passed');
  }
  console.log(`ready: jobs may set interpolate to 2, 4 or 8 (CLI --interpolate K)`);
}

async function setupModel() {
  const key = values.model;
  if (!values.repo && !isModelName(key)) fail(`--model must be one of ${Object.keys(MODEL_NAMES).join(', ')} (or give --repo owner/name)`);
  const animateLcm = !values.repo && key === 'animatelcm-svd-xt';
  const repo = values.repo ?? MODEL_NAMES[key as keyof typeof MODEL_NAMES];
  const dest = values.dir ?? modelDirFor(repo);
  mkdirSync(dest, { recursive: true });
  const fs = statfsSync(dest);
  console.log(`node ${process.versions.node}; ${gb(fs.bavail * fs.bsize)} free in ${dest}`);
  const { gpus } = queryGpus();
  if (gpus.length) for (const g of gpus) console.log(`GPU ${g.index}: ${g.name}, ${(g.memoryTotalMiB / 1024).toFixed(1)} GiB`);
  else console.log('no NVIDIA GPU found (nvidia-smi is missing): generation will use WebGPU if available, else the CPU, which takes hours per video');

  const onProgress = downloadProgress();
  if (animateLcm) await downloadAnimateLcm({ dest, token: process.env.HF_TOKEN, onProgress });
  else await downloadModel({ repo, dest, token: process.env.HF_TOKEN, onProgress });

  const provider = await resolveProvider('auto');
  console.log(describeResolution(provider));
  if (provider.provider === 'cpu') console.log('warning: running on the CPU; a 25-frame video takes hours (above: why no GPU provider runs)');
  const dtype = provider.provider === 'cpu' ? 'float32' : 'float16';
  console.log(`converting for ${provider.provider} (${dtype}); the first time this takes a few minutes`);
  convertModel({ model: dest, dtype, attention: 'mha', onEvent: (e) => e.type === 'built' && console.log(`built     ${e.network} (${e.seconds.toFixed(0)} s)`) });

  if (!values['skip-self-test']) {
    console.log('self-test: a 2-frame, 1-step video at 256x256');
    const p = await SvdPipeline.load(dest, { provider: provider.provider, dtype });
    const image = { data: new Uint8Array(256 * 256 * 3).fill(128), width: 256, height: 256 };
    const r = await p.generate(image, parseSettings({ width: 256, height: 256, frames: 2, steps: 1, decodeChunk: 2, seed: 1 }));
    await p.release();
    if (!r.frames.every(Number.isFinite)) fail('the self-test produced NaN values; please report this with the output above');
    console.log(`self-test passed in ${(r.timings.totalMs / 1000).toFixed(1)} s`);
  }
  console.log(`ready: ${dest}\nstart the server with: npm start (add -- --share for a public link)`);
}

/** One line per file (a live one on a terminal) as the downloader reports. */
function downloadProgress(): (e: DownloadProgress) => void {
  let current = '';
  return (e) => {
    if (e.type === 'verified') console.log(`ok        ${e.path}`);
    else if (e.type === 'done') {
      if (process.stdout.isTTY) process.stdout.write('\n');
      console.log(`fetched   ${e.path}`);
    } else if (e.type === 'retry') console.log(`retrying  ${e.path} (attempt ${e.attempt}): ${e.reason}`);
    else if (e.type === 'mismatch') console.log(`checksum  ${e.path} did not match; fetching again`);
    else if (e.type === 'progress') {
      const pct = e.total ? ((100 * e.bytes) / e.total).toFixed(1) : '?';
      const line = `${e.path}  ${pct}%  ${gb(e.bytes)}/${gb(e.total)}  ${(e.bytesPerSecond / 1e6).toFixed(1)} MB/s  ETA ${Number.isFinite(e.etaSeconds) ? Math.round(e.etaSeconds) : '?'} s`;
      if (process.stdout.isTTY) process.stdout.write(`\r\x1b[K${line}`);
      else if (current !== e.path) console.log(line);
      current = e.path;
    }
  };
}

main().catch((err: Error) => fail(err instanceof HubError ? err.message : `${err.message}`));
