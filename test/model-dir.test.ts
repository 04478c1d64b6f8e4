import { copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openModelDir } from '../models/model-dir.js';
import { FIXTURE_MODEL, fixtureCopy } from './helpers.js';

describe('model directory reader', () => {
  it('reads every component config and picks the fp16 weights', () => {
    const m = openModelDir(FIXTURE_MODEL);
    expect(m.unet.config.block_out_channels).toEqual([32, 32, 64]);
    expect(m.unet.weightsPath).toMatch(/unet\/diffusion_pytorch_model\.fp16\.safetensors$/);
    expect(m.imageEncoder.weightsPath).toMatch(/image_encoder\/model\.fp16\.safetensors$/);
    expect(m.vae.config.scaling_factor).toBe(0.18215);
    expect(m.scheduler.config.sigma_max).toBe(700);
    expect(m.featureExtractor.config.image_mean[0]).toBeCloseTo(0.48145466);
  });

  it('falls back to the plain weights file when there is no fp16 variant', () => {
    const dir = fixtureCopy();
    renameSync(join(dir, 'vae/diffusion_pytorch_model.fp16.safetensors'), join(dir, 'vae/diffusion_pytorch_model.safetensors'));
    expect(openModelDir(dir).vae.weightsPath).toMatch(/vae\/diffusion_pytorch_model\.safetensors$/);
    copyFileSync(join(dir, 'vae/diffusion_pytorch_model.safetensors'), join(dir, 'vae/diffusion_pytorch_model.fp16.safetensors'));
    expect(openModelDir(dir).vae.weightsPath).toMatch(/fp16\.safetensors$/);
  });

  it('lists every missing file at once', () => {
    const dir = fixtureCopy();
    rmSync(join(dir, 'unet/diffusion_pytorch_model.fp16.safetensors'));
    rmSync(join(dir, 'scheduler/scheduler_config.json'));
    expect(() => openModelDir(dir)).toThrow(/incomplete; missing: scheduler\/scheduler_config\.json, unet\/diffusion_pytorch_model\.fp16\.safetensors or diffusion_pytorch_model\.safetensors/);
    expect(() => openModelDir(join(dir, 'nope'))).toThrow(/does not exist/);
  });

  it('names the config file and the missing key', () => {
    const dir = fixtureCopy();
    const path = join(dir, 'unet/config.json');
    const cfg = JSON.parse(readFileSync(path, 'utf8'));
    delete cfg.block_out_channels;
    writeFileSync(path, JSON.stringify(cfg));
    expect(() => openModelDir(dir)).toThrow(new RegExp(`${path}: missing key "block_out_channels"`));

    const vaePath = join(dir, '../model/vae/config.json');
    writeFileSync(path, JSON.stringify({ ...cfg, block_out_channels: [32, 32, 64] }));
    writeFileSync(vaePath, '{ not json');
    expect(() => openModelDir(dir)).toThrow(/vae\/config\.json: not valid JSON/);
  });
});
