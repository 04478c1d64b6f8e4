// The `svd` command line as a user runs it (a child process per call, the tiny model on the CPU).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_MODEL, tempDir, FIXTURE_INPUT } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');

function svd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'svd.ts'), ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
      ok({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const small = ['--model', FIXTURE_MODEL, '--image', FIXTURE_INPUT, '--width', '128', '--height', '64', '--frames', '3', '--steps', '2', '--provider', 'cpu'];

describe('svd generate', () => {
  it('writes the next free name when the output exists, so the same command works twice', async () => {
    const out = join(tempDir('svd-cli-'), 'demo.mp4');
    const first = await svd('generate', ...small, '--out', out);
    expect(first.code, first.stderr).toBe(0);
    const firstBytes = readFileSync(out);
    const second = await svd('generate', ...small, '--out', out);
    expect(second.code, second.stderr).toBe(0);
    const next = out.replace(/demo\.mp4$/, 'demo-2.mp4');
    expect(second.stderr).toContain(`${out} exists; writing ${next} instead`);
    // said before the work, not after it
    expect(second.stderr.indexOf('exists; writing')).toBeLessThan(second.stderr.indexOf('sampling'));
    expect(statSync(next).size).toBeGreaterThan(1000);
    expect(readFileSync(out).equals(firstBytes)).toBe(true);
  });

  it('prints its help for --help and -h', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await svd('generate', flag);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/usage: npm run svd -- generate/);
      expect(r.stdout).toContain('--motion-bucket');
    }
    const c = await svd('convert', '--help');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/usage: npm run svd -- convert/);
  });

  it('says a negative seed is out of range, in the flag names the user typed', async () => {
    const r = await svd('generate', '--image', 'x.png', '--seed', '-5');
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('error: --seed must be a whole number from 0 to 2^53 − 1');
    const s = await svd('generate', '--image', 'x.png', '--motion-bucket', '5000', '--frames', '2.5');
    expect(s.code).toBe(2);
    expect(s.stderr.trim()).toBe('error: --frames must be a whole number, 1–128; --motion-bucket must be 0–1023');
    expect(s.stderr).not.toMatch(/motionBucket|Too big|expected/);
    const g = await svd('generate', '--image', 'x.png', '--min-guidance', '3', '--max-guidance', '2');
    expect(g.stderr.trim()).toBe('error: --max-guidance must be at least --min-guidance');
  });

  it('turns an unknown option into a usage error that points at --help', async () => {
    const r = await svd('generate', '--image', 'x.png', '--colour', 'red');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--colour' (npm run svd -- generate --help lists the options)");
  });

  it('runs the 4-step AnimateLCM demo with its own defaults (4 steps) where flags leave them out', async () => {
    const dir = tempDir('svd-cli-');
    const r = await svd(
      'generate',
      '--model',
      'demo/animatelcm-tiny/model',
      '--image',
      FIXTURE_INPUT,
      '--width',
      '64',
      '--height',
      '64',
      '--frames',
      '2',
      '--seed',
      '1',
      '--frames-out',
      join(dir, 'f.safetensors'),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sampling 4\/4/);
    expect(r.stderr).not.toMatch(/sampling 5\//);
    const s = await svd('generate', '--model', 'demo/animatelcm-tiny/model', '--image', FIXTURE_INPUT, '--width', '64', '--height', '64', '--frames', '2', '--steps', '2', '--out', join(dir, 'x.mp4'));
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/sampling 2\/2/);
    const t = await svd('generate', '--model', 'demo/animatelcm-tiny/model', '--image', FIXTURE_INPUT, '--width', '64', '--height', '64', '--steps', '41', '--out', join(dir, 'y.mp4'));
    expect(t.code).toBe(1);
    expect(t.stderr).toContain('the AnimateLCM sampler takes at most 40 steps');
  });

  it('tells how to install a model named but not installed', async () => {
    const r = await svd('generate', '--model', 'animatelcm-svd-xt', '--image', FIXTURE_INPUT, '--out', join(tempDir('svd-cli-'), 'x.mp4'));
    // Skipped where this machine has it installed.
    if (r.code === 0) return;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/animatelcm-svd-xt is not installed \(looked in .*AnimateLCM-SVD-xt\): install it with npm run setup -- --model animatelcm-svd-xt/);
  });

  it('tells how to install a missing model, before loading anything', async () => {
    const dir = tempDir('svd-cli-');
    const r = await svd('generate', '--model', join(dir, 'nothing-here'), '--image', FIXTURE_INPUT, '--out', join(dir, 'x.mp4'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('npm run setup -- --model svd-xt');
    expect(r.stderr).not.toContain('svd -- download');
    expect(r.stderr).not.toMatch(/provider|loading/);
    expect(existsSync(join(dir, 'x.mp4'))).toBe(false);
  });

  it('refuses an output name without a video extension before doing the work', async () => {
    const dir = tempDir('svd-cli-');
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    const r = await svd('generate', ...small, '--out', join(dir, 'keep.txt'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/use a name ending in \.mp4, \.webm or \.gif/);
    expect(r.stderr).not.toMatch(/sampling/);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('mine');
  });
});
