import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { componentOf, defineNetwork, NETWORKS } from '../models/build.js';
import { publishBuild } from '../models/convert.js';
import { openModelDir } from '../models/model-dir.js';
import { SafetensorsWeights } from '../models/onnx/weights.js';
import { SafetensorsFile } from '../models/safetensors.js';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

describe('model conversion', () => {
  it('uses the network another process published first (workers on two cards loading one model)', () => {
    const root = tempDir();
    const dir = join(root, 'unet-abc');
    const path = join(dir, 'unet.onnx');
    mkdirSync(dir);
    writeFileSync(path, 'first');
    const tmp = join(root, 'unet-abc.tmp-2');
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'unet.onnx'), 'second');
    publishBuild(tmp, dir, path);
    expect(readFileSync(path, 'utf8')).toBe('first');
    expect(existsSync(tmp)).toBe(false);
  });

  it('still fails when the place is taken by something that is not the network', () => {
    const root = tempDir();
    const dir = join(root, 'unet-abc');
    mkdirSync(dir);
    writeFileSync(join(dir, 'stray'), 'x');
    const tmp = join(root, 'unet-abc.tmp-2');
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'unet.onnx'), 'ours');
    expect(() => publishBuild(tmp, dir, join(dir, 'unet.onnx'))).toThrow(/ENOTEMPTY|EEXIST/);
  });

  it("lists the checkpoint each component's networks read: every tensor of the fixture, shapes included", () => {
    // bench/random-model.ts writes full-size checkpoints from this list.
    const model = openModelDir(FIXTURE_MODEL);
    for (const component of ['unet', 'vae', 'imageEncoder'] as const) {
      const weights = SafetensorsWeights.open(model[component].weightsPath);
      const read = new Map<string, readonly number[]>();
      for (const network of NETWORKS.filter((n) => componentOf(model, n) === model[component])) {
        for (const [name, shape] of defineNetwork(model, network, weights, { dtype: 'float32', attention: 'mha' }).checkpointShapes) read.set(name, shape);
      }
      const file = SafetensorsFile.open(model[component].weightsPath);
      const stored = [...file.tensors].map(([name, info]) => [name, [...info.shape]]);
      expect([...read].map(([name, shape]) => [name, [...shape]]).sort()).toEqual(stored.sort());
      weights.close();
      file.close();
    }
  });
});
