// Network contracts: each network's inputs and outputs are declared once (the network table),
// the built graphs have exactly those edges, and feeds that break them fail with what was wrong.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { buildNetworkFile, NETWORKS, networkContract } from '../models/build.js';
import { openModelDir } from '../models/model-dir.js';
import { checkFeeds, checkSessionNames } from '../models/networks/contracts.js';
import { NetworkSession } from '../models/pipeline/session-pool.js';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

const model = openModelDir(FIXTURE_MODEL);
const out = tempDir('svd-contracts-');
const sessions: ort.InferenceSession[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});

const tensor = (type: 'float32' | 'uint8', dims: number[]) =>
  new ort.Tensor(type, type === 'float32' ? new Float32Array(dims.reduce((a, b) => a * b, 1)) : new Uint8Array(dims.reduce((a, b) => a * b, 1)), dims);

describe('network contracts', () => {
  it.each(NETWORKS)('%s: the built graph has exactly the declared inputs and outputs, with their types and fixed sizes', async (network) => {
    const path = join(out, `${network}.onnx`);
    buildNetworkFile(model, network, path, { dtype: 'float32', attention: 'mha' });
    const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    sessions.push(session);
    const contract = networkContract(model, network);
    expect(session.inputNames).toEqual(contract.inputs.map((i) => i.name));
    expect(session.outputNames).toEqual(contract.outputs.map((o) => o.name));
    const edges = (meta: readonly ort.InferenceSession.ValueMetadata[]) => meta.map((m) => (m.isTensor ? { name: m.name, dtype: m.type, dims: m.shape } : { name: m.name }));
    const declared = (specs: typeof contract.inputs) => specs.map((s) => ({ name: s.name, dtype: s.dtype, dims: s.dims }));
    expect(edges(session.inputMetadata)).toEqual(declared(contract.inputs));
    expect(edges(session.outputMetadata)).toEqual(declared(contract.outputs));
    expect(() => checkSessionNames(network, contract, session)).not.toThrow();
  });

  it('a UNet feed that breaks the contract fails with the input, what it must be and what it got', () => {
    const contract = networkContract(model, 'unet');
    const c = model.unet.config;
    const good = {
      sample: tensor('float32', [2, 3, c.in_channels, 8, 8]),
      timestep: tensor('float32', [1]),
      encoder_hidden_states: tensor('float32', [2, 1, contract.inputs[2]!.dims[2] as number]),
      added_time_ids: tensor('float32', [2, 3]),
    };
    expect(() => checkFeeds('unet', contract, good)).not.toThrow();
    const { timestep: _, ...missing } = good;
    expect(() => checkFeeds('unet', contract, missing)).toThrow(/unet: missing input timestep \(it takes sample, timestep, encoder_hidden_states, added_time_ids\)/);
    expect(() => checkFeeds('unet', contract, { ...good, noise: tensor('float32', [1]) })).toThrow(/unknown input noise/);
    expect(() => checkFeeds('unet', contract, { ...good, sample: tensor('float32', [2, 3, c.in_channels + 1, 8, 8]) })).toThrow(
      /input sample must be float32 \[batch, frames, \d+, height, width\], got float32 \[2, 3, \d+, 8, 8\]/,
    );
    expect(() => checkFeeds('unet', contract, { ...good, added_time_ids: tensor('uint8', [2, 3]) })).toThrow(/input added_time_ids must be float32 \[batch, 3\], got uint8/);
    expect(() => checkFeeds('unet', contract, { ...good, added_time_ids: tensor('float32', [1, 3]) })).toThrow(/unet: batch is 2 in sample but 1 in added_time_ids/);
  });

  it('a session whose graph file has other edges than declared is refused when opened', async () => {
    const path = join(out, 'encoder-as-decoder.onnx');
    buildNetworkFile(model, 'vae_encoder', path, { dtype: 'float32', attention: 'mha' });
    const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    sessions.push(session);
    expect(() => new NetworkSession('vae_decoder', networkContract(model, 'vae_decoder'), session)).toThrow(
      /vae_decoder: the graph file takes image and gives latent, but this version declares latents → frames, video, rgb; rebuild/,
    );
  });
});
