// An inference worker: the child process (one per GPU) that loads the model and runs jobs, so that
// onnxruntime's blocking session.run never stalls the server's event loop. Started by pool.ts;
// talks to it only through common/worker-protocol.ts messages. A cancel is seen between steps; a
// step in flight cannot be interrupted, so the pool kills this process when it does not answer.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fromWorkerSchema, toWorkerSchema, type FromWorker, type ToWorker } from '../../common/worker-protocol.js';
import { GenerationCancelled } from '../../models/pipeline/pipeline.js';
import { generateChain } from '../../models/pipeline/video-chain.js';
import { decodeImage, frameImage } from '../../models/pipeline/prepare-image.js';
import { DiskFullError, isNoSpace } from '../../media/disk-full.js';
import { latentPreview } from '../../media/preview.js';
import { ModelManager } from '../model-manager.js';
import { formatError } from '../../common/messages.js';

function send(message: FromWorker): void {
  // The parent is gone: nothing to report to, and the GPU should be given back.
  if (!process.connected) process.exit(0);
  process.send!(fromWorkerSchema.parse(message));
}

let manager: ModelManager | undefined;
/** Why this worker cannot run jobs at all (said again to every job sent to it). */
let initError: string | undefined;
let current: { jobId: string; controller: AbortController } | undefined;

async function runJob(msg: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  const controller = new AbortController();
  current = { jobId: msg.jobId, controller };
  const { signal } = controller;
  const { jobId, settings: s } = msg;
  try {
    if (!manager) throw new Error(initError ?? 'the worker was asked to run a job before it was initialised');
    const pipeline = await manager.get(msg.model);
    // The job's own progress says so (the model's loading messages would mark the whole worker as loading).
    if (s.interpolate > 1) send({ type: 'progress', jobId, progress: { stage: 'loading', message: 'opening the frame interpolator' } });
    const interpolator = s.interpolate > 1 ? await manager.interpolator(msg.model, pipeline) : undefined;
    if (signal.aborted) throw new GenerationCancelled();
    const image = await frameImage(await decodeImage(readFileSync(msg.imagePath)), s);
    let previewBusy = false;
    const result = await generateChain(pipeline, image, s, {
      interpolator,
      signal,
      // The videos are made from the 8-bit frames alone.
      floatFrames: false,
      onProgress: (e) => send({ type: 'progress', jobId, progress: e }),
      onPreview: (latents, dims) => {
        // One preview at a time: a step that ends while the last JPEG is being made skips its own.
        if (previewBusy) return;
        previewBusy = true;
        latentPreview(latents, dims)
          .then((url) => send({ type: 'preview', jobId, url }))
          .catch(() => {})
          .finally(() => (previewBusy = false));
      },
    });
    await writeFile(msg.framesPath, result.rgb).catch((err: unknown) => {
      // The message crosses the process boundary as text: say it in the server's words here.
      throw isNoSpace(err) ? new DiskFullError('the generated frames', 'server') : err;
    });
    send({
      type: 'result',
      jobId,
      frameCount: result.frameCount,
      width: result.width,
      height: result.height,
      fps: result.fps,
      seed: result.seed,
      ...(result.seeds.length > 1 ? { seeds: result.seeds } : {}),
      provider: `${result.provider} (${result.dtype})`,
      totalMs: result.timings.totalMs,
    });
  } catch (err) {
    const cancelled = err instanceof GenerationCancelled || signal.aborted;
    send({ type: 'job-failed', jobId, cancelled, error: cancelled ? 'cancelled' : (err as Error).message });
  } finally {
    current = undefined;
  }
}

function init(msg: Extract<ToWorker, { type: 'init' }>): void {
  const { runtime } = msg;
  // WebGPU cannot be pointed at a card here: a worker for a second card must have CUDA, or it
  // would silently share the first card with the first worker.
  const onOtherCard = runtime.deviceId !== undefined && runtime.deviceId > 0;
  if (onOtherCard && runtime.provider === 'webgpu') {
    initError = `card ${runtime.deviceId} needs the CUDA provider (WebGPU always uses the first card); start with --provider cuda or --gpus 0`;
    send({ type: 'model-error', name: msg.load, error: initError });
    return;
  }
  manager = new ModelManager(
    msg.models,
    { provider: onOtherCard && runtime.provider === 'auto' ? 'cuda' : runtime.provider, gpuMemory: runtime.gpuMemory, deviceId: runtime.deviceId },
    (name, pipeline) =>
      pipeline.then(
        (p) => send({ type: 'model-ready', name, provider: `${p.provider} (${p.dtype}${p.gpuMemory ? `, ${p.gpuMemory} memory mode` : ''})`, plan: p.planBasis }),
        (err: Error) => send({ type: 'model-error', name, error: err.message }),
      ),
    (line) => send({ type: 'model-loading', name: manager?.activeName ?? msg.load, message: line }),
  );
  void manager.get(msg.load).catch(() => {});
}

let jobs: Promise<void> = Promise.resolve();

process.on('message', (raw) => {
  const parsed = toWorkerSchema.safeParse(raw);
  if (!parsed.success) {
    console.error(`worker: ignored a malformed message: ${formatError(parsed.error)}`);
    return;
  }
  const msg = parsed.data;
  switch (msg.type) {
    case 'init':
      init(msg);
      break;
    case 'run':
      // The pool sends one job at a time; chaining keeps even a stray second one from overlapping.
      jobs = jobs.then(() => runJob(msg));
      break;
    case 'cancel':
      if (current?.jobId === msg.jobId) current.controller.abort();
      break;
    case 'shutdown':
      void (async () => {
        current?.controller.abort();
        await manager?.release().catch(() => {});
        process.exit(0);
      })();
      break;
  }
});
// The server went away (even killed): give the GPU back.
process.on('disconnect', () => process.exit(0));
send({ type: 'started', pid: process.pid });
