// Full-size SVD-XT benchmark: builds the four networks from the real configuration with random
// weights (no download), then times a whole generation on one provider and prints one table
// (and JSON). `--check-fixture` first replays the fixture in the chosen precision against fp32 CPU.
//   npm run bench -- [--provider webgpu|cuda|cpu] [any setting of npm run svd -- generate: --width,
//     --height, --frames, --steps, --decode-chunk, …; defaults as there, seed 1]
//     [--dtype fp16|fp32] [--json FILE] [--work DIR] [--check-fixture]
//     [--sampler euler|animatelcm] (animatelcm: AnimateLCM-SVD-xt's sampler at its reference settings, 4 steps unless --steps)
//     [--gpu-memory auto|fast|lean] [--runs N] (N jobs on the open pipeline: the first cold, the rest warm) [--reuse] (keep networks an earlier run built in DIR; build times are then left out)
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RandomWeights } from '../models/onnx/weights.js';
import { ANIMATELCM_SVD_XT_SCHEDULER, SVD_XT_CONFIG_ONLY } from '../models/reference-configs.js';
import { defineNetwork, networkDType, NETWORKS, type NetworkName } from '../models/build.js';
import { SvdPipeline, type ProgressEvent } from '../models/pipeline/pipeline.js';
import { graphFormsFor, resolveProvider, type GpuMemoryMode, type ProviderChoice } from '../models/runtime/runtime.js';
import { rowsFor } from '../common/setting-table.js';
import { modelDefaults, parseSettings, SETTINGS } from '../common/settings.js';
import { flagNamer, settingOptions, settingsFromFlags } from '../cli/setting-flags.js';
import { SafetensorsFile } from '../models/safetensors.js';
import { DEMO_MODEL } from '../models/paths.js';
import { gpuMemoryMonitor, machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'webgpu' },
    ...settingOptions(rowsFor(SETTINGS, ['framing', 'sampling'])),
    sampler: { type: 'string', default: 'euler' },
    dtype: { type: 'string', default: 'fp16' },
    json: { type: 'string' },
    work: { type: 'string', default: 'bench-out' },
    'check-fixture': { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
    'gpu-memory': { type: 'string', default: 'auto' },
    /** The golden tensors of the demo model's reference run. */
    'fixture-dir': { type: 'string', default: 'test/fixtures/svd-tiny' },
    /** Jobs to time on the same open pipeline: the first is cold (new shapes), the rest warm, as in a running server. */
    runs: { type: 'string', default: '1' },
    /** Layout overrides (default: what the pipeline chooses): guidance batch joint|split, sessions shared|separate. */
    guidance: { type: 'string' },
    /** Run pipeline.warmUp first (as the server does after loading), reported apart. */
    'warm-up': { type: 'boolean', default: false },
    sessions: { type: 'string' },
    /** CUDA: shared (one arena for every network, the default) or own (one per session). */
    'cuda-arena': { type: 'string' },
  },
});
const dtype = values.dtype === 'fp32' ? 'float32' : 'float16';
const report: Record<string, unknown> = { machine: machineLine(values.provider!), date: new Date().toISOString() };
console.log(report.machine);

const gpu = gpuMemoryMonitor();
const hostPeakMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);
const sec = (ms: number) => +(ms / 1000).toFixed(3);

const resolution = await resolveProvider(values.provider as ProviderChoice);

if (values['check-fixture']) {
  const dir = values['fixture-dir']!;
  const g = SafetensorsFile.open(join(dir, 'golden.safetensors'));
  const image = { data: g.readBytes('input_image'), width: 128, height: 64 };
  const settings = parseSettings({ width: 128, height: 64, frames: 5, steps: 4, decodeChunk: 2 });
  const noise = { condAug: g.readFloat32('cond_aug_noise'), initial: g.readFloat32('initial_noise') };
  const run = async (provider: ProviderChoice, dt: 'float32' | 'float16') => {
    const p = await SvdPipeline.load(DEMO_MODEL, { provider, dtype: dt, cacheDir: join(values.work!, 'fixture-cache') });
    const r = await p.generate(image, settings, { noise });
    await p.release();
    return r.frames;
  };
  const ref = await run('cpu', 'float32');
  const onGpu = await run(values.provider as ProviderChoice, dtype);
  let mse = 0;
  let nan = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(onGpu[i]!)) nan++;
    mse += (onGpu[i]! - ref[i]!) ** 2;
  }
  mse /= ref.length;
  const golden = g.readFloat32('frames');
  let goldenMax = 0;
  for (let i = 0; i < ref.length; i++) goldenMax = Math.max(goldenMax, Math.abs(ref[i]! - golden[i]!));
  report.fixture = { psnrDb: +(10 * Math.log10(1 / mse)).toFixed(2), nonFinite: nan, cpuVsGoldenMaxAbs: goldenMax };
  console.log(
    `fixture replay ${values.provider} ${dtype} vs cpu fp32: PSNR ${(report.fixture as { psnrDb: number }).psnrDb} dB, non-finite values ${nan}; cpu vs golden max abs ${goldenMax.toExponential(2)}`,
  );
}

// Build the full-size networks: the reference configuration with random weights, nothing to download.
// AnimateLCM-SVD-xt is the same networks with another sampler.
if (values.sampler !== 'euler' && values.sampler !== 'animatelcm') throw new Error(`--sampler must be euler or animatelcm, got "${values.sampler}"`);
const fast = values.sampler === 'animatelcm';
const model = fast ? { ...SVD_XT_CONFIG_ONLY, scheduler: { configPath: '', config: ANIMATELCM_SVD_XT_SCHEDULER } } : SVD_XT_CONFIG_ONLY;
mkdirSync(values.work!, { recursive: true });
const files = {} as Record<NetworkName, string>;
const build: Record<string, number> = {};
for (const network of NETWORKS) {
  files[network] = join(values.work!, `${network}.onnx`);
  if (values.reuse && existsSync(files[network])) continue;
  const t = performance.now();
  defineNetwork(model, network, new RandomWeights(3), { dtype: networkDType(model, network, dtype), attention: 'mha', forms: graphFormsFor(resolution.provider) }).save(files[network]);
  build[network] = sec(performance.now() - t);
  console.log(`built ${network} in ${build[network]} s`);
}
report.buildS = build;

const t = performance.now();
const pipeline = await SvdPipeline.create(model, files, resolution, dtype, (m) => console.log(`  ${m}`), {
  gpuMemory: values['gpu-memory'] as GpuMemoryMode,
  guidanceBatch: values.guidance as 'joint' | 'split' | undefined,
  sessions: values.sessions as 'shared' | 'separate' | undefined,
  cudaArena: values['cuda-arena'] as 'shared' | 'own' | undefined,
});
report.sessionCreateS = sec(performance.now() - t);
report.sharedArena = pipeline.planBasis.device.sharedArena ?? false;
console.log(`one shared CUDA arena: ${report.sharedArena}`);
console.log(`sessions created in ${report.sessionCreateS} s`);

// Decode chunk 8 unless given, as in the runs BENCHMARKS.md records (--decode-chunk auto: the planner's choice).
const settings = parseSettings({ ...modelDefaults({ fast }), seed: 1, decodeChunk: 8, ...settingsFromFlags(values, SETTINGS) }, flagNamer(SETTINGS));
const { width: W, height: H } = settings;
const image = { data: new Uint8Array(W * H * 3).map((_, i) => (i * 31) % 251), width: W, height: H };
async function timeJob(run: number) {
  const marks: { e: ProgressEvent; t: number }[] = [];
  let samplingPeakMiB = 0;
  gpu.resetPeak();
  const t = performance.now();
  // As a server runs it: 8-bit frames only, except in the first (cold) job, whose float frames are checked for NaN/Inf.
  const result = await pipeline.generate(image, settings, {
    floatFrames: run === 0,
    onProgress: (e) => {
      marks.push({ e, t: performance.now() });
      if (e.stage === 'sampling') console.log(`  [run ${run}] step ${e.step}/${e.steps} ${sec(e.elapsedMs)} s, GPU ${gpu.lastMiB} MiB`);
      if (e.stage === 'loading') console.log(`  ${e.message}`);
      if (e.stage === 'sampling' && e.step === e.steps) {
        samplingPeakMiB = gpu.peakMiB;
        gpu.resetPeak();
      }
    },
  });
  const total = performance.now() - t;
  const sampling = marks.filter((m) => m.e.stage === 'sampling');
  const elapsed = sampling.map((m) => (m.e.stage === 'sampling' ? m.e.elapsedMs : 0));
  const steps = elapsed.map((ms, i) => ms - (i === 0 ? 0 : elapsed[i - 1]!));
  const decodeMarks = [...marks.filter((m) => m.e.stage === 'decoding'), marks.find((m) => m.e.stage === 'done')!];
  const chunks = decodeMarks.slice(1).map((m, i) => m.t - decodeMarks[i]!.t);
  let nonFinite: number | undefined;
  if (result.frames) {
    nonFinite = 0;
    for (const v of result.frames) if (!Number.isFinite(v)) nonFinite++;
  }
  return {
    workload: {
      width: W,
      height: H,
      frames: result.frameCount,
      sampler: values.sampler,
      steps: settings.steps,
      guidanceRange: [settings.minGuidance, settings.maxGuidance],
      decodeChunk: settings.decodeChunk,
      decodeChunkUsed: result.plan.decodeChunk,
      guidance: { batch: 2, run: result.plan.guidanceBatch },
      sessions: result.plan.sessions,
    },
    plan: result.plan,
    sessionReopenS: sec(result.timings.loadMs),
    /** Time inside the UNet's session.run per step; the rest of a step is the pipeline's own work. */
    unetRunPerStepS: sec(result.timings.unetRunMs / settings.steps),
    encodeS: sec(result.timings.encodeMs),
    unetFirstStepS: sec(steps[0]!),
    unetStepMedianS: sec([...steps.slice(1)].sort((a, b) => a - b)[Math.floor((steps.length - 1) / 2)] ?? steps[0]!),
    samplingS: sec(result.timings.sampleMs),
    decodeChunkS: chunks.map(sec),
    decodeS: sec(result.timings.decodeMs),
    totalS: sec(total),
    gpuPeakMiB: Math.max(gpu.peakMiB, samplingPeakMiB),
    gpuPeakSamplingMiB: samplingPeakMiB,
    gpuPeakDecodingMiB: gpu.peakMiB,
    /** Card memory in use before the benchmark started (another process's, when simulating a smaller card). */
    gpuBaselineMiB: gpu.baseMiB,
    ownPeakMiB: Math.max(gpu.peakMiB, samplingPeakMiB) - gpu.baseMiB,
    /** Float frames that are NaN or infinite: the first job only (the others fetch the 8-bit frames, as a server does). */
    nonFiniteFrames: nonFinite,
    /** Every 1009th 8-bit value: runs of other graph forms on the same weights and seed compare by it. */
    rgbSample: Array.from({ length: Math.floor(result.rgb.length / 1009) }, (_, i) => result.rgb[i * 1009]!),
  };
}
if (values['warm-up']) {
  const ms = await pipeline.warmUp(settings);
  report.warmUpS = ms === undefined ? null : sec(ms);
  console.log(ms === undefined ? 'no warm-up: this layout reopens every stage in each job' : `warm-up (one step at the job's shapes) ${report.warmUpS} s`);
}
const runs = [];
for (let r = 0; r < Math.max(1, Number(values.runs)); r++) runs.push(await timeJob(r));
gpu.stop();
// The last run stands for the warm (server) case; every run is kept, the first being cold.
Object.assign(report, {
  provider: resolution.provider,
  forms: graphFormsFor(resolution.provider),
  gpuMemory: pipeline.gpuMemory,
  dtype,
  ...runs[runs.length - 1]!,
  nonFiniteFrames: runs[0]!.nonFiniteFrames,
  gpu: gpu.name,
  hostPeakMiB: hostPeakMiB(),
});
if (runs.length > 1)
  report.runs = runs.map((r) => ({
    totalS: r.totalS,
    unetRunPerStepS: r.unetRunPerStepS,
    unetFirstStepS: r.unetFirstStepS,
    unetStepMedianS: r.unetStepMedianS,
    decodeS: r.decodeS,
    gpuPeakSamplingMiB: r.gpuPeakSamplingMiB,
    gpuPeakDecodingMiB: r.gpuPeakDecodingMiB,
  }));
await pipeline.release();
console.log('\n| stage | seconds |\n| --- | --- |');
for (const [k, v] of Object.entries(report)) if (typeof v === 'number' || (Array.isArray(v) && typeof v[0] === 'number')) console.log(`| ${k} | ${Array.isArray(v) ? v.join(', ') : v} |`);
console.log(`| gpu | ${gpu.name ?? 'n/a'} |`);
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
console.log(JSON.stringify({ ...report, rgbSample: undefined }));
