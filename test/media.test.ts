import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { arrangeFrames } from '../media/ffmpeg.js';
import { nextNumber, prepareSaveFolder, saveNumbered } from '../server/save-folder.js';
import { tempDir } from './helpers.js';

describe('Drive-style save folder', () => {
  it('continues the numbering and keeps extensions', async () => {
    const dir = tempDir();
    const src = join(tempDir(), 'video.mp4');
    writeFileSync(src, 'video');
    const json = join(tempDir(), 'settings.json');
    writeFileSync(json, '{}');
    await expect(nextNumber(join(dir, 'new'))).rejects.toThrow(/no longer exists/);
    expect(prepareSaveFolder(join(dir, 'new'))).toEqual([`created the save folder ${join(dir, 'new')}`]);
    expect(await nextNumber(join(dir, 'new'))).toBe(1);
    writeFileSync(join(dir, '000041.mp4'), '');
    writeFileSync(join(dir, 'notes.txt'), '');
    const r = await saveNumbered(dir, [src, json]);
    expect(r.files.map((f) => f.slice(dir.length + 1))).toEqual(['000042.mp4', '000042.json']);
    expect(readFileSync(join(dir, '000042.mp4'), 'utf8')).toBe('video');
    expect(readdirSync(dir).some((f) => f.includes('partial'))).toBe(false);
  });

  it('retries a folder that fails for a while, and gives up with the reason', async () => {
    const base = tempDir();
    const folder = join(base, 'drive');
    writeFileSync(folder, 'a file where the folder should be'); // like an unmounted Drive
    const src = join(base, 'v.mp4');
    writeFileSync(src, 'v');
    setTimeout(() => {
      rmSync(folder);
      mkdirSync(folder);
    }, 120);
    const r = await saveNumbered(folder, [src], { attempts: 6, delayMs: 40 });
    expect(r.files).toEqual([join(folder, '000001.mp4')]);
    const blocked = join(base, 'blocked');
    writeFileSync(blocked, '');
    await expect(saveNumbered(blocked, [src], { attempts: 2, delayMs: 10 })).rejects.toThrow(/is not a folder/);
  });

  it('never re-creates a folder that disappeared, and makes one at start only under an existing parent', async () => {
    const base = tempDir();
    const src = join(base, 'v.mp4');
    writeFileSync(src, 'v');
    const folder = join(base, 'drive');
    prepareSaveFolder(folder);
    rmSync(folder, { recursive: true });
    await expect(saveNumbered(folder, [src], { attempts: 2, delayMs: 10 })).rejects.toThrow(/no longer exists/);
    expect(existsSync(folder)).toBe(false);
    expect(() => prepareSaveFolder(join(base, 'unmounted', 'MyDrive', 'svd'))).toThrow(/does not exist \(is the drive mounted\?\)/);
    expect(existsSync(join(base, 'unmounted'))).toBe(false);
  });

  it('removes copies a killed process left half-done, and never keeps half a set', async () => {
    const folder = tempDir();
    writeFileSync(join(folder, '.000003.mp4.partial'), 'half');
    writeFileSync(join(folder, '000002.mp4'), 'kept');
    expect(prepareSaveFolder(folder)).toEqual(['removed the unfinished copy .000003.mp4.partial']);
    const src = join(tempDir(), 'v.mp4');
    writeFileSync(src, 'v');
    // The second file is missing: the first copy of this set must not stay behind as 000003.mp4.
    await expect(saveNumbered(folder, [src, join(folder, 'missing.json')], { attempts: 2, delayMs: 10 })).rejects.toThrow(/ENOENT/);
    expect(readdirSync(folder).sort()).toEqual(['000002.mp4']);
  });
});

describe('frame arrangement', () => {
  const video = { rgb: Uint8Array.from([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]), frameCount: 4, width: 1, height: 1, fps: 7 };
  it('ping-pongs without repeating the ends and repeats loops', () => {
    expect([...arrangeFrames(video, { pingPong: true }).rgb].filter((_, i) => i % 3 === 0)).toEqual([0, 1, 2, 3, 2, 1]);
    expect(arrangeFrames(video, { loops: 2 }).frameCount).toBe(8);
    expect(arrangeFrames(video, {})).toBe(video);
  });
});
