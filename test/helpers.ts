import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DEMO_IMAGE, DEMO_MODEL } from '../models/paths.js';
import { SafetensorsFile } from '../models/safetensors.js';

/** The golden tensors of the reference run; the model and its picture are the shipped demo's. */
export const FIXTURE = join(import.meta.dirname, 'fixtures', 'svd-tiny');
export const FIXTURE_MODEL = DEMO_MODEL;
export const FIXTURE_INPUT = DEMO_IMAGE;
/** The README's demo job made as small as it goes (paths relative to a project root, as the README writes them). */
export const SMALL_DEMO_JOB = ['generate', '--model', 'demo/svd-tiny/model', '--image', 'demo/svd-tiny/input.png', '--width', '64', '--height', '64', '--frames', '2', '--steps', '1'];

let golden: SafetensorsFile | undefined;
export function goldenFile(): SafetensorsFile {
  return (golden ??= SafetensorsFile.open(join(FIXTURE, 'golden.safetensors')));
}
export function goldenTensor(name: string): ort.Tensor {
  const g = goldenFile();
  return new ort.Tensor('float32', g.readFloat32(name), [...g.info(name).shape]);
}

/** ‖a − b‖ / ‖b‖ */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

export function tempDir(prefix = 'svd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A writable copy of the fixture model, for tests that break it on purpose. */
export function fixtureCopy(): string {
  const dir = join(tempDir(), 'model');
  cpSync(FIXTURE_MODEL, dir, { recursive: true });
  return dir;
}

/** Polls `fn` every 50 ms until it gives something other than undefined or false. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
