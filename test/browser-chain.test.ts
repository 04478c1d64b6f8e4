// The page's part of issue 23 in real headless Chromium against the real server (demo model and
// demo interpolator on the CPU): continuing a finished video from its last frame, and variations
// side by side with their seeds. Screenshots go to test/screenshots/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSnapshot } from '../common/api-types.js';
import { startServer, type RunningServer } from '../server/main.js';
import { FIXTURE_INPUT, FIXTURE_MODEL, tempDir } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, 'screenshots');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server: RunningServer;
let browser: Browser;
const consoleErrors: string[] = [];

const jobs = async () => (await (await fetch(`${server.url}api/jobs`)).json()) as JobSnapshot[];

async function pageWithImage(settings: Record<string, string | number>): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(server.url);
  await page.waitForSelector('[data-testid=status]:has-text("cpu")');
  await page.setInputFiles('[data-testid=file-input]', FIXTURE_INPUT);
  await page.waitForSelector('[data-testid=model-input]');
  await page.click('details.advanced summary');
  for (const [k, v] of Object.entries(settings)) await page.fill(`#f-${k}`, String(v));
  return page;
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // One person's page: the API calls here see what the page made (each browser sees only its own jobs otherwise).
  server = await startServer(
    { model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-browser-chain-'), provider: 'cpu', modelsRoot: tempDir('svd-browser-chain-models-'), sharedHistory: true },
    () => {},
  );
  while (((await (await fetch(`${server.url}api/health`)).json()) as { status: string }).status !== 'ready') await new Promise((r) => setTimeout(r, 100));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('page: longer videos', () => {
  it('continues a finished video from its last frame: a new job, linked in the history', async () => {
    const page = await pageWithImage({ width: 128, height: 64, frames: 3, steps: 1, extend: 2, interpolate: 2 });
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=result-video]', { timeout: 60_000 });
    const [first] = await jobs();
    expect(first).toMatchObject({ status: 'done', settings: { extend: 2, interpolate: 2 } });
    expect(first!.seeds).toHaveLength(2);
    await expect.poll(() => page.textContent('[data-testid=key-settings]')).toMatch(/14 fps · 2 segments · interpolated ×2/);
    await page.click('[data-testid=continue]');
    await expect.poll(async () => (await jobs()).length).toBe(2);
    const [second] = await jobs();
    expect(second!.continues).toBe(first!.id);
    await page.waitForSelector('[data-testid=history-link]:has-text("continues the video of")', { timeout: 60_000 });
    await expect.poll(async () => (await jobs())[0]!.status, { timeout: 60_000 }).toBe('done');
    await page.waitForSelector(`[data-testid=result-video][src*="${second!.id}"]`, { timeout: 60_000 });
    await page.screenshot({ path: join(SHOTS, 'continue-1366x900.png'), fullPage: true });
    await page.close();
  });

  it('shows variations side by side with their seeds, each downloadable and continuable', async () => {
    const page = await pageWithImage({ width: 128, height: 64, frames: 2, steps: 1, variations: 3, seed: 7 });
    await page.click('[data-testid=run]');
    await expect.poll(() => page.locator('[data-testid=variation] video').count(), { timeout: 90_000 }).toBe(3);
    expect(await page.locator('[data-testid=variation-seed]').allTextContents()).toEqual(['1/3 · seed 7', '2/3 · seed 8', '3/3 · seed 9']);
    // Side by side: one row at this width.
    const tops = await page.locator('[data-testid=variation]').evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
    expect(new Set(tops).size).toBe(1);
    expect(await page.locator('[data-testid=variation] a:has-text("Download")').count()).toBe(3);
    await page.screenshot({ path: join(SHOTS, 'variations-1366x900.png'), fullPage: true });
    // Continuing the second one queues a job from its last frame.
    const before = (await jobs()).length;
    const second = (await jobs()).find((j) => j.variation?.index === 2)!;
    await page.locator('[data-testid=variation]').nth(1).locator('button:has-text("Continue")').click();
    await expect.poll(async () => (await jobs()).length).toBe(before + 1);
    expect((await jobs())[0]!.continues).toBe(second.id);
    await page.close();
    expect(consoleErrors).toEqual([]);
  });
});
