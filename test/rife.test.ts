// RIFE 4.25 as built by models/networks/rife.ts, from the torch checkpoint the reference code
// saved (test/fixtures/rife-tiny, made by scripts/fixtures/make_rife_fixture.py), in float32 on
// the CPU provider, against the reference's output on the same inputs.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { installRife } from '../models/download/rife-weights.js';
import { buildInterpolatorFile, installRifeCheckpoint, interpolatorWeights } from '../models/interpolator.js';
import { SafetensorsFile } from '../models/safetensors.js';
import { readTorchStateDict, TorchCheckpointError } from '../models/torch-checkpoint.js';
import { tempDir } from './helpers.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'rife-tiny');
const golden = SafetensorsFile.open(join(FIXTURE, 'golden.safetensors'));
const tensor = (name: string) => new ort.Tensor('float32', golden.readFloat32(name), [...golden.info(name).shape]);
afterAll(() => golden.close());

/** max |a − b| over max |b|: every value held to the tolerance, not an average. */
function maxRelative(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

describe('torch checkpoint reader', () => {
  it('reads every tensor of the state dict torch.save wrote, with its shape', () => {
    const state = readTorchStateDict(join(FIXTURE, 'flownet.pkl'));
    const meta = JSON.parse(readFileSync(join(FIXTURE, 'golden.json'), 'utf8')) as { parameters: number; widths: number[] };
    expect([...state.values()].reduce((s, t) => s + t.data.length, 0)).toBe(meta.parameters);
    expect(state.get('module.block0.conv0.1.0.weight')!.shape).toEqual([meta.widths[0], meta.widths[0]! / 2, 3, 3]);
    expect(state.get('module.encode.cnn3.weight')!.shape).toEqual([16, 4, 4, 4]);
  });

  it('refuses a file that is not a zip checkpoint, and a pickle that calls anything but tensor rebuilding', () => {
    const dir = tempDir('rife-ckpt-');
    const legacy = join(dir, 'legacy.pkl');
    writeFileSync(legacy, Buffer.from([0x80, 0x02, 0x8a, 0x0a]));
    expect(() => readTorchStateDict(legacy)).toThrow(/legacy \(pre-1\.6\) format/);
    // The fixture's archive with os.system put where OrderedDict was: refused before anything is called.
    const bytes = readFileSync(join(FIXTURE, 'flownet.pkl'));
    const at = bytes.indexOf('collections\nOrderedDict\n');
    expect(at).toBeGreaterThan(0);
    const evil = Buffer.from(bytes);
    evil.write('os\nsystem\n\n\n\n\n\n\n\n\n\n\n\n\n', at, 'latin1');
    writeFileSync(join(dir, 'evil.pkl'), evil);
    expect(() => readTorchStateDict(join(dir, 'evil.pkl'))).toThrow(TorchCheckpointError);
  });
});

describe('RIFE 4.25 graph, fp32 CPU', () => {
  it('installs the checkpoint and matches the reference frame at two timesteps to 1e-4', async () => {
    const dir = tempDir('rife-install-');
    const installed = installRifeCheckpoint(join(FIXTURE, 'flownet.pkl'), dir);
    // The training-only teacher block stays in the file but not in the graph.
    expect(installed.tensors).toBeGreaterThan(0);
    const path = join(dir, 'rife.onnx');
    buildInterpolatorFile(dir, path);
    expect(interpolatorWeights(dir)).toBe(join(dir, 'rife.safetensors'));
    const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    try {
      expect([...session.inputNames].sort()).toEqual(['img0', 'img1', 'timestep']);
      const { frame } = await session.run({ img0: tensor('img0'), img1: tensor('img1'), timestep: tensor('timestep') });
      expect(frame!.dims).toEqual(golden.info('frame').shape);
      const err = maxRelative(frame!.data as Float32Array, golden.readFloat32('frame'));
      // Observed about 2e-6.
      expect(err).toBeLessThanOrEqual(1e-4);
      // Not a trivial pass: the middle frame differs from both inputs.
      expect(maxRelative(golden.readFloat32('frame'), golden.readFloat32('img0'))).toBeGreaterThan(1e-2);
    } finally {
      await session.release();
    }
  });
});

describe('npm run setup -- --interpolator rife: the download', () => {
  const pkl = readFileSync(join(FIXTURE, 'flownet.pkl'));
  const sha256 = createHash('sha256').update(pkl).digest('hex');
  /** Serves the fixture checkpoint like a release asset (byte ranges), cutting the first response after `cutAfter` bytes. */
  async function releaseServer(cutAfter: number) {
    const ranges: (string | undefined)[] = [];
    let cut = false;
    const server = createServer((req, res) => {
      ranges.push(req.headers.range);
      const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(from ? 206 : 200, { 'content-length': pkl.length - from, ...(from ? { 'content-range': `bytes ${from}-${pkl.length - 1}/${pkl.length}` } : {}) });
      if (!cut) {
        cut = true;
        // Sent, then the connection drops (after the client has the bytes).
        res.write(pkl.subarray(from, cutAfter), () => setTimeout(() => res.destroy(), 50));
        return;
      }
      res.end(pkl.subarray(from));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/flownet_v4.25.pkl`, ranges, close: () => new Promise((ok) => server.close(ok)) };
  }

  it('resumes a cut download with a byte range, checks the sha256, installs, and only verifies the second time', async () => {
    const remote = await releaseServer(300_000);
    const dest = tempDir('rife-setup-');
    const events: string[] = [];
    try {
      const release = { url: remote.url, size: pkl.length, sha256 };
      const installed = await installRife(dest, { release, backoffMs: 10, onProgress: (e) => events.push(e.type) });
      expect(installed.parameters).toBe(181092);
      expect(remote.ranges).toEqual([undefined, 'bytes=300000-']);
      expect(events).toContain('retry');
      expect(readFileSync(join(dest, 'flownet.pkl')).equals(pkl)).toBe(true);
      events.length = 0;
      await installRife(dest, { release, onProgress: (e) => events.push(e.type) });
      expect(events).toEqual(['verified']);
      expect(remote.ranges).toHaveLength(2);
      await expect(installRife(tempDir('rife-setup-bad-'), { release: { ...release, sha256: '0'.repeat(64) }, retries: 1, backoffMs: 10 })).rejects.toThrow(/sha256 of flownet\.pkl does not match/);
    } finally {
      await remote.close();
    }
  });
});
