import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationCancelled, SvdPipeline, type ProgressEvent } from '../models/pipeline/pipeline.js';
import { prepareImage } from '../models/pipeline/prepare-image.js';
import { resolveGpuMemoryMode, resolveProvider } from '../models/runtime/runtime.js';
import { parseSettings } from '../common/settings.js';
import { SafetensorsFile } from '../models/safetensors.js';
import { encodeVideo } from '../media/ffmpeg.js';
import { FIXTURE, FIXTURE_MODEL, goldenFile, tempDir, FIXTURE_INPUT } from './helpers.js';

const cache = tempDir('svd-cache-');
const call = { width: 128, height: 64, frames: 5, steps: 4, fps: 7, motionBucket: 127, noiseAug: 0.02, minGuidance: 1, maxGuidance: 3, decodeChunk: 2 };
let pipeline: SvdPipeline;

beforeAll(async () => {
  pipeline = await SvdPipeline.load(FIXTURE_MODEL, { provider: 'cpu', cacheDir: cache });
});
afterAll(async () => {
  await pipeline?.release();
});

const image = () => prepareImage(FIXTURE_INPUT, { width: 128, height: 64, framing: { mode: 'stretch' } });

function maxAbs(a: Float32Array, b: Float32Array) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('sampling pipeline on the fixture (fp32, CPU)', () => {
  it('replays the reference run from its noise to within 1e-4 of its frames, with progress', async () => {
    const g = goldenFile();
    const events: ProgressEvent[] = [];
    const r = await pipeline.generate(await image(), parseSettings(call), {
      noise: { condAug: g.readFloat32('cond_aug_noise'), initial: g.readFloat32('initial_noise') },
      onProgress: (e) => events.push(e),
    });
    expect([r.frameCount, r.height, r.width]).toEqual([5, 64, 128]);
    expect(maxAbs(r.frames, g.readFloat32('frames'))).toBeLessThan(1e-4);
    // The 8-bit frames are the float ones ×255 rounded half to even (numpy's round), made in the decoder graph.
    const halfEven = (x: number) => {
      const k = Math.round(x);
      return k - x === 0.5 && k % 2 === 1 ? k - 1 : k;
    };
    expect(r.rgb.every((v, i) => v === halfEven(Math.fround(r.frames[i]! * 255)))).toBe(true);
    expect(events.map((e) => e.stage)).toEqual(['encoding', 'sampling', 'sampling', 'sampling', 'sampling', 'decoding', 'decoding', 'decoding', 'done']);
    const last = events[4] as Extract<ProgressEvent, { stage: 'sampling' }>;
    expect(last).toMatchObject({ step: 4, steps: 4, etaMs: 0 });
  });

  it('gives the same frames with the guidance batch one video at a time and each stage opening its own networks', async () => {
    const g = goldenFile();
    const lean = await SvdPipeline.load(FIXTURE_MODEL, { provider: 'cpu', cacheDir: cache, guidanceBatch: 'split', sessions: 'separate' });
    try {
      expect(lean.planBasis.device).toMatchObject({ guidanceBatch: 'split', sessions: 'separate' });
      for (let run = 0; run < 2; run++) {
        const messages: string[] = [];
        const r = await lean.generate(await image(), parseSettings(call), {
          noise: { condAug: g.readFloat32('cond_aug_noise'), initial: g.readFloat32('initial_noise') },
          onProgress: (e) => e.stage === 'loading' && messages.push(e.message),
        });
        expect(maxAbs(r.frames, g.readFloat32('frames'))).toBeLessThan(1e-4);
        expect(messages).toEqual([
          'loading image_encoder',
          'loading vae_encoder',
          'closing image_encoder, vae_encoder to free the GPU memory held for them',
          'loading unet',
          'closing unet to free the GPU memory held for it',
          'loading vae_decoder',
        ]);
        expect(r.timings.loadMs).toBeGreaterThan(0);
      }
    } finally {
      await lean.release();
    }
  });

  it('is bit-for-bit reproducible for a seed, reports it, and differs for another seed', async () => {
    const img = await image();
    const a = await pipeline.generate(img, parseSettings({ ...call, seed: 1234 }));
    const b = await pipeline.generate(img, parseSettings({ ...call, seed: 1234 }));
    const c = await pipeline.generate(img, parseSettings({ ...call, seed: 1235 }));
    expect(a.seed).toBe(1234);
    expect(Buffer.compare(Buffer.from(a.frames.buffer), Buffer.from(b.frames.buffer))).toBe(0);
    expect(maxAbs(a.frames, c.frames)).toBeGreaterThan(1e-3);
    const unseeded = await pipeline.generate(img, parseSettings(call));
    expect(Number.isInteger(unseeded.seed)).toBe(true);
  });

  it('a server asks for the 8-bit frames alone: the same bytes, and no float frames fetched', async () => {
    const img = await image();
    const both = await pipeline.generate(img, parseSettings({ ...call, seed: 77 }));
    const bytesOnly = await pipeline.generate(img, parseSettings({ ...call, seed: 77 }), { floatFrames: false });
    expect(bytesOnly.frames).toBeUndefined();
    expect(Buffer.compare(Buffer.from(bytesOnly.rgb), Buffer.from(both.rgb))).toBe(0);
  });

  it('runs without a guidance batch when max guidance <= 1', async () => {
    const r = await pipeline.generate(await image(), parseSettings({ ...call, minGuidance: 1, maxGuidance: 1, seed: 5 }));
    expect(r.frames.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it('cancels between steps and stays usable', async () => {
    const controller = new AbortController();
    const img = await image();
    await expect(
      pipeline.generate(img, parseSettings({ ...call, seed: 9 }), {
        signal: controller.signal,
        onProgress: (e) => e.stage === 'sampling' && e.step === 1 && controller.abort(),
      }),
    ).rejects.toBeInstanceOf(GenerationCancelled);
    const again = await pipeline.generate(img, parseSettings({ ...call, seed: 9 }));
    expect(again.frameCount).toBe(5);
  });

  it('rejects bad settings with what to change', () => {
    expect(() => parseSettings({ ...call, width: 100 })).toThrow(/width must be a multiple of 64/);
    expect(() => parseSettings({ ...call, minGuidance: 3, maxGuidance: 1 })).toThrow(/maxGuidance must be at least minGuidance/);
    expect(() => parseSettings({ ...call, seed: -3 })).toThrow(/seed/);
  });
});

describe('providers', () => {
  it('auto says which provider it got and why the ones before it failed', async () => {
    const r = await resolveProvider('auto');
    const order = ['cuda', 'webgpu', 'cpu'];
    expect(r.skipped.map((s) => s.provider)).toEqual(order.slice(0, order.indexOf(r.provider)));
    for (const s of r.skipped) expect(s.reason.length).toBeGreaterThan(0);
  });

  it('WebGPU memory mode: explicit choices stand, SVD_GPU_MEMORY fills in for auto, nonsense is named', async () => {
    const saved = process.env.SVD_GPU_MEMORY;
    try {
      delete process.env.SVD_GPU_MEMORY;
      expect(await resolveGpuMemoryMode('fast')).toBe('fast');
      expect(await resolveGpuMemoryMode('lean')).toBe('lean');
      expect(['fast', 'lean']).toContain(await resolveGpuMemoryMode('auto'));
      process.env.SVD_GPU_MEMORY = 'lean';
      expect(await resolveGpuMemoryMode('auto')).toBe('lean');
      expect(await resolveGpuMemoryMode('fast')).toBe('fast');
      process.env.SVD_GPU_MEMORY = 'quick';
      await expect(resolveGpuMemoryMode('auto')).rejects.toThrow(/SVD_GPU_MEMORY=quick is not one of auto, fast, lean/);
    } finally {
      if (saved === undefined) delete process.env.SVD_GPU_MEMORY;
      else process.env.SVD_GPU_MEMORY = saved;
    }
  });
});

describe('video files', () => {
  const probe = (path: string) => JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height,nb_frames,pix_fmt', '-of', 'json', path]).toString()).streams[0];
  const video = () => {
    const rgb = new Uint8Array(3 * 64 * 128 * 3).map((_, i) => (i * 7) % 256);
    return { rgb, frameCount: 3, width: 128, height: 64, fps: 7 };
  };
  it.each([
    ['mp4', 'h264'],
    ['webm', 'vp9'],
    ['gif', 'gif'],
  ])('writes a browser-playable %s', async (ext, codec) => {
    const out = join(tempDir(), `v.${ext}`);
    await encodeVideo(video(), out);
    const s = probe(out);
    expect(s).toMatchObject({ codec_name: codec, width: 128, height: 64 });
    if (ext === 'mp4') expect(s.pix_fmt).toBe('yuv420p');
  });
  it('never overwrites an existing video', async () => {
    const out = join(tempDir(), 'keep.mp4');
    writeFileSync(out, 'precious');
    await expect(encodeVideo(video(), out)).rejects.toThrow(/already exists; choose another name/);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    await expect(encodeVideo(video(), join(tempDir(), 'x.avi'))).rejects.toThrow(/\.mp4, \.webm or \.gif/);
  });
});

describe('command line', () => {
  // `npm run svd` runs the compiled CLI (dist/); the tests run the same entry from the sources.
  const npmRun = (args: string[]) => spawnSync('node_modules/.bin/tsx', ['cli/launch.ts', 'cli/svd.ts', ...args], { encoding: 'utf8', env: { ...process.env, SVD_STUDIO_CACHE: cache } });

  it('replays the reference through the documented contract', () => {
    const dir = tempDir();
    const out = join(dir, 'frames.safetensors');
    const r = npmRun([
      'generate',
      '--model',
      FIXTURE_MODEL,
      '--image',
      FIXTURE_INPUT,
      '--width',
      '128',
      '--height',
      '64',
      '--frames',
      '5',
      '--steps',
      '4',
      '--fps',
      '7',
      '--motion-bucket',
      '127',
      '--noise-aug',
      '0.02',
      '--min-guidance',
      '1',
      '--max-guidance',
      '3',
      '--decode-chunk',
      '2',
      '--resize',
      'stretch',
      '--provider',
      'cpu',
      '--dtype',
      'fp32',
      '--noise-file',
      join(FIXTURE, 'golden.safetensors'),
      '--frames-out',
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const f = SafetensorsFile.open(out);
    expect(f.info('frames')).toMatchObject({ dtype: 'F32', shape: [5, 64, 128, 3] });
    expect(maxAbs(f.readFloat32('frames'), goldenFile().readFloat32('frames'))).toBeLessThan(1e-4);
  });

  it('writes an mp4 and reports the seed', () => {
    const out = join(tempDir(), 'clip.mp4');
    const r = npmRun([
      'generate',
      '--model',
      FIXTURE_MODEL,
      '--image',
      FIXTURE_INPUT,
      '--width',
      '128',
      '--height',
      '64',
      '--frames',
      '3',
      '--steps',
      '2',
      '--seed',
      '77',
      '--provider',
      'cpu',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/seed 77/);
    expect(existsSync(out)).toBe(true);
  });

  it('explains bad arguments', () => {
    const r = npmRun(['generate', '--image', FIXTURE_INPUT, '--width', 'wide']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--width must be a number, got "wide"/);
    const g = npmRun(['generate', '--image', FIXTURE_INPUT, '--gpu-memory', 'huge']);
    expect(g.status).toBe(2);
    expect(g.stderr).toMatch(/--gpu-memory must be one of auto, fast, lean, got "huge"/);
    const m = npmRun(['generate', '--model', join(tempDir(), 'none'), '--image', FIXTURE_INPUT, '--width', '128', '--height', '64', '--provider', 'cpu']);
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/does not exist; install it first with npm run setup -- --model svd-xt/);
  });
});
