import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

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

  it('runs exactly the commands of the README', () => {
    const form: string = nb.cells[1].source.join('');
    const block = /COMMANDS = \[\n([\s\S]*?)\n\]/.exec(form)![1]!;
    const commands = block.split('\n').map((l) => JSON.parse(l.trim().replace(/,$/, '')) as string);
    expect(commands.length).toBeGreaterThanOrEqual(4);
    const defaults: Record<string, string> = {
      repo_url: /repo_url = "([^"]+)"/.exec(form)![1]!,
      model: 'svd-xt',
      share: 'localtunnel',
      token: 'YOUR-TOKEN',
      save_flag: "--save-dir '/content/drive/MyDrive/AI_PICS/img2vid'",
    };
    const colab = /\*\*Colab\*\*[\s\S]*?```bash\n([\s\S]*?)```/.exec(readme)![1]!.trim().split('\n');
    expect(commands.map((c) => c.replace(/\{(\w+)\}/g, (_, k: string) => defaults[k]!))).toEqual(colab);
  });
});
