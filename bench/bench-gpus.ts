// Jobs on several NVIDIA cards at once through the server's own worker pool (one worker process
// per card, jobs handed out first-free in FIFO order, as JobService does), timing each job: first
// one job alone, then as many at once as there are workers. The model is a full-size SVD-XT with
// random weights written to --work unless --model names a real one. HTTP and ffmpeg are left out.
//   tsx bench/bench-gpus.ts [--gpus 0,1] [--provider cuda] [--model DIR] [any setting of npm run svd -- generate:
//     --width, --height, --frames, --steps, --decode-chunk, …; defaults as there, seed 1] [--work DIR] [--json FILE]
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { rowsFor } from '../common/setting-table.js';
import { parseSettings, SETTINGS } from '../common/settings.js';
import { flagNamer, settingOptions, settingsFromFlags } from '../cli/setting-flags.js';
import { nvidiaGpus } from '../models/runtime/nvidia-smi.js';
import { WorkerPool, type WorkerJobResult } from '../server/workers/pool.js';
import { workerSlots } from '../server/workers/slots.js';
import { gpuMemoryMonitor, machineLine } from './bench-env.js';
import { writeRandomModel } from './random-model.js';

const { values } = parseArgs({
  options: {
    gpus: { type: 'string' },
    provider: { type: 'string', default: 'cuda' },
    model: { type: 'string' },
    ...settingOptions(rowsFor(SETTINGS, ['framing', 'sampling'])),
    work: { type: 'string', default: 'bench-out' },
    json: { type: 'string' },
  },
});
const work = resolve(values.work!);
mkdirSync(work, { recursive: true });
const report: Record<string, unknown> = { machine: machineLine(values.provider!), date: new Date().toISOString() };
console.log(report.machine);
const sec = (ms: number) => +(ms / 1000).toFixed(2);
const t0 = performance.now();
const at = () => sec(performance.now() - t0);

const cards = await nvidiaGpus(10_000);
const slots = workerSlots(
  { gpus: values.gpus?.split(',').map(Number), provider: values.provider! },
  cards.map((c) => c.index),
);
report.cards = cards.map((c) => `${c.index}: ${c.name}, ${c.memoryTotalMiB} MiB`);
console.log(`cards: ${(report.cards as string[]).join('; ') || 'none'}; workers: ${slots.map((s) => s.name).join(', ')}`);

// Each card's peak memory while the jobs run, from nvidia-smi.
const gpu = gpuMemoryMonitor(500);

const modelPath = values.model ?? writeRandomModel(join(work, 'random-svd-xt'), 3, (l) => console.log(`[${at()} s] random model: ${l}`));
// The workers convert into this cache (inherited through the environment), all at once on first use.
process.env.SVD_STUDIO_CACHE ??= join(work, 'onnx-cache');
const pool = new WorkerPool({
  slots,
  runtime: { provider: values.provider as 'cuda', gpuMemory: 'auto' },
  models: [{ name: 'svd-xt', path: modelPath }],
  log: (l) => console.log(`[${at()} s] ${l}`),
});
pool.start();
const loadStart = performance.now();
while (!pool.workers.every((w) => w.ready)) {
  const failed = pool.workers.find((w) => w.failed);
  if (failed) throw new Error(`${failed.name}: ${failed.status().message}`);
  await new Promise((r) => setTimeout(r, 1000));
}
report.modelReadyS = sec(performance.now() - loadStart);
report.workers = pool.status().map((s) => ({ name: s.name, deviceId: s.deviceId, provider: s.provider }));

// Decode chunk 8 unless given, as in the runs BENCHMARKS.md records (--decode-chunk auto: the planner's choice).
const settings = parseSettings({ seed: 1, decodeChunk: 8, ...settingsFromFlags(values, SETTINGS) }, flagNamer(SETTINGS));
const { width: W, height: H } = settings;
const imagePath = join(work, 'input.png');
const pixels = Buffer.alloc(W * H * 3);
for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31) % 251;
await sharp(pixels, { raw: { width: W, height: H, channels: 3 } })
  .png()
  .toFile(imagePath);

interface Timed {
  job: string;
  worker: string;
  deviceId?: number;
  startedAtS: number;
  endedAtS: number;
  wallS: number;
  /** The pipeline's own total, inside the worker. */
  pipelineS: number;
  samplingStepsS: number[];
}

/** Runs `n` jobs submitted together, each on the first free worker in FIFO order. */
async function round(label: string, n: number): Promise<Timed[]> {
  const queue = Array.from({ length: n }, (_, i) => `${label}-${i + 1}`);
  const running: Promise<Timed>[] = [];
  while (queue.length) {
    const worker = pool.firstFree('svd-xt');
    if (!worker) {
      await once(pool, 'free');
      continue;
    }
    const jobId = queue.shift()!;
    const started = performance.now();
    const stepEnds: number[] = [];
    running.push(
      worker
        .run(
          { jobId, model: 'svd-xt', imagePath, framesPath: join(work, `${jobId}.rgb`), settings },
          {
            progress: (p) => {
              if (p.stage === 'sampling') stepEnds.push(p.elapsedMs);
            },
            preview: () => {},
          },
          new AbortController().signal,
        )
        .then((r: WorkerJobResult) => {
          const t: Timed = {
            job: jobId,
            worker: worker.name,
            deviceId: worker.slot.deviceId,
            startedAtS: sec(started - t0),
            endedAtS: at(),
            wallS: sec(performance.now() - started),
            pipelineS: sec(r.totalMs),
            samplingStepsS: stepEnds.map((ms, i) => sec(ms - (i ? stepEnds[i - 1]! : 0))),
          };
          console.log(`[${at()} s] ${jobId} on ${worker.name}: ${t.wallS} s (pipeline ${t.pipelineS} s)`);
          return t;
        }),
    );
  }
  return Promise.all(running);
}

report.alone = await round('alone', 1);
gpu.resetPeak();
report.together = await round('together', pool.workers.length);
report.peakMiBPerCard = gpu.peakPerCardMiB();
gpu.stop();
await pool.close();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('\n| round | job | worker | wall s | pipeline s | median step s |\n| --- | --- | --- | --- | --- | --- |');
for (const [label, jobs] of [
  ['alone', report.alone],
  ['together', report.together],
] as const)
  for (const j of jobs as Timed[]) console.log(`| ${label} | ${j.job} | ${j.worker} | ${j.wallS} | ${j.pipelineS} | ${median(j.samplingStepsS.slice(1))} |`);
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
console.log(JSON.stringify(report));
