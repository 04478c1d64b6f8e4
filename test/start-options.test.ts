// `npm start`'s options (cli/start.ts) read with the CLI's parser and messages: a wrong option ends
// the process with exit code 1 and one plain line that names it, before anything is started.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');

function start(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'start.ts'), ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
      ok({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm start -- [options]', () => {
  it('exits 1 with one plain line naming the option for an unknown option, a wrong value and a missing one', async () => {
    const out = join(tempDir('svd-start-'), 'outputs');
    const cases: [string[], string][] = [
      [['--bogus'], "error: Unknown option '--bogus' (npm start -- --help lists the options)"],
      [['--port', 'abc'], 'error: --port must be 0–65535 (npm start -- --help lists the options)'],
      [['--port'], 'error: --port needs a value (npm start -- --help lists the options)'],
      [['--port', '--host', '0.0.0.0'], 'error: --port needs a value (npm start -- --help lists the options)'],
      [['--keep-jobs', '2.5'], 'error: --keep-jobs must be a whole number, at least 1 (npm start -- --help lists the options)'],
      [['--provider', 'tpu'], 'error: --provider must be one of auto, cuda, webgpu, cpu (npm start -- --help lists the options)'],
      [['--share', 'ngrok'], 'error: --share must be cloudflared, or nothing for localtunnel (npm start -- --help lists the options)'],
    ];
    const results = await Promise.all(cases.map(([args]) => start('--output-dir', out, ...args)));
    cases.forEach(([args, line], i) => {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toBe(`${line}\n`);
      expect(r.stdout).toBe('');
    });
    // nothing was started, locked or written
    expect(existsSync(out)).toBe(false);
  });

  it('prints its options with --help', async () => {
    const r = await start('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm start -- \[options\]/);
    for (const flag of ['--port N', '--share [cloudflared]', '--shared-history', '--job-storage GB']) expect(r.stdout).toContain(flag);
  });
});
