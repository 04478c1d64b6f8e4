import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CARDS, fakeMachines } from './fake-cuda.js';

const machine = fakeMachines();

const root = join(import.meta.dirname, '..');
const nb = JSON.parse(readFileSync(join(root, 'notebook', 'svd_img2vid.ipynb'), 'utf8'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

describe('Colab notebook', () => {
  it('is nbformat 4 with a form cell and a log cell', () => {
    expect(nb.nbformat).toBe(4);
    expect(nb.metadata.accelerator).toBe('GPU');
    const code = nb.cells.filter((c: { cell_type: string }) => c.cell_type === 'code');
    expect(code).toHaveLength(2);
    for (const c of nb.cells) {
      expect(Array.isArray(c.source)).toBe(true);
      expect(typeof c.id).toBe('string');
      if (c.cell_type === 'code') expect(c.outputs).toEqual([]);
    }
    const form = code[0].source.join('');
    for (const field of ['model = "svd-xt" #@param', 'save_to_drive = True #@param', 'drive_folder = "AI_PICS/img2vid" #@param', 'share = "localtunnel" #@param', 'password = "" #@param'])
      expect(form).toContain(field);
  });

  const commands = (): string[] => {
    const form: string = nb.cells[1].source.join('');
    const block = /COMMANDS = \[\n([\s\S]*?)\n\]/.exec(form)![1]!;
    return block.split('\n').map((l) => JSON.parse(l.trim().replace(/,$/, '')) as string);
  };

  it("checks the box with svd doctor after setup: on Colab's T4 (driver 550) it shows the CUDA 12 build", () => {
    const doctor = commands().find((c) => c.includes(' doctor'))!;
    expect(commands().indexOf(doctor)).toBe(commands().findIndex((c) => c.includes('setup.sh --gpu')) + 1);
    const m = machine();
    const smi = m.nvidiaSmi({ version: '550.54.15', cuda: '12.4' }, [CARDS.t4]);
    const r = spawnSync('bash', ['-c', doctor.replace('/content/svd-studio', root)], { encoding: 'utf8', env: { ...process.env, PATH: `${dirname(smi)}:${process.env.PATH}` }, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('card 0: Tesla T4, sm_75, 15.0 GiB');
    expect(r.stdout).toContain('runtime: CUDA 12 with onnxruntime 1.26.0 (node_modules/onnxruntime-node-cuda12)');
    expect(r.stdout).toMatch(/because NVIDIA driver 550\.54\.15 .*older than 580\.65\.06, which CUDA 13 needs/);
  });

  it('runs exactly the commands of the README', () => {
    const form: string = nb.cells[1].source.join('');
    expect(commands().length).toBeGreaterThanOrEqual(5);
    const defaults: Record<string, string> = {
      repo_url: /repo_url = "([^"]+)"/.exec(form)![1]!,
      model: 'svd-xt',
      share: 'localtunnel',
      token: 'YOUR-TOKEN',
      save_flag: "--save-dir '/content/drive/MyDrive/AI_PICS/img2vid'",
    };
    const colab = /\*\*Colab\*\*[\s\S]*?```bash\n([\s\S]*?)```/.exec(readme)![1]!.trim().split('\n');
    expect(commands().map((c) => c.replace(/\{(\w+)\}/g, (_, k: string) => defaults[k]!))).toEqual(colab);
  });
});
