// The page in real headless Chromium (playwright-core + Debian's chromium) against the real
// server with the tiny model on the CPU. Screenshots of each state go to test/screenshots/.
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, startServer, type RunningServer } from '../server/main.js';
import { FIXTURE, FIXTURE_MODEL, tempDir } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, 'screenshots');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server: RunningServer;
let browser: Browser;
const consoleErrors: string[] = [];

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  return page;
}

async function fillSmall(page: Page, steps: number) {
  await page.fill('#f-width', '128');
  await page.fill('#f-height', '64');
  await page.fill('#f-frames', '3');
  await page.fill('#f-steps', String(steps));
}

/** A fresh page with the fixture image uploaded and small settings filled in. */
async function pageWithImage(steps: number): Promise<Page> {
  const page = await newPage();
  await page.goto(server.url);
  await page.waitForSelector('[data-testid=status]:has-text("cpu")');
  await page.setInputFiles('[data-testid=file-input]', join(FIXTURE, 'input.png'));
  await fillSmall(page, steps);
  return page;
}

const stepOf = async (page: Page) => Number(/step (\d+)\//.exec((await page.textContent('[data-testid=progress-label]').catch(() => '')) ?? '')?.[1] ?? 0);

beforeAll(async () => {
  execSync('npm run -s build:client', { cwd: PROJECT_ROOT, stdio: 'inherit' });
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-browser-'), provider: 'cpu' }, () => {});
  // The model loads in a worker process; the page reads the status once when it opens.
  while (((await (await fetch(`${server.url}api/health`)).json()) as { status: string }).status !== 'ready') await new Promise((r) => setTimeout(r, 100));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the page', () => {
  it('uploads, moves the crop, changes a setting, runs with progress, plays and downloads the MP4', async () => {
    const page = await pageWithImage(100);
    // A square output from a 2:1 image leaves room to move the crop window sideways.
    await page.fill('#f-width', '64');
    const win = page.locator('[data-testid=crop-window]');
    const before = await win.boundingBox();
    await win.hover();
    await page.mouse.down();
    await page.mouse.move(before!.x + before!.width / 2 - 60, before!.y + before!.height / 2, { steps: 5 });
    await page.mouse.up();
    const after = await win.boundingBox();
    expect(after!.x).toBeLessThan(before!.x - 20);
    expect(Number(await page.inputValue('input[aria-label="crop horizontal"]'))).toBeLessThan(0.5);
    await page.fill('#f-motionBucket', '300');
    await expect.poll(() => page.textContent('#f-motionBucket-hint')).toMatch(/0–255/);
    expect(await page.isDisabled('[data-testid=run]')).toBe(true);
    await page.fill('#f-motionBucket', '180');
    await page.screenshot({ path: join(SHOTS, '1-upload-crop-settings.png'), fullPage: true });

    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")');
    const first = await stepOf(page);
    await expect.poll(() => stepOf(page), { timeout: 30_000 }).toBeGreaterThan(first);
    await page.screenshot({ path: join(SHOTS, '2-progress.png'), fullPage: true });

    const video = page.locator('[data-testid=result-video]');
    await video.waitFor({ timeout: 60_000 });
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => (Number.isFinite(v.duration) ? v.duration : 0)), { timeout: 20_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, '3-result.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Download MP4')]);
    const file = join(tempDir(), 'dl.mp4');
    await download.saveAs(file);
    expect(statSync(file).size).toBeGreaterThan(1000);
    expect(download.suggestedFilename()).toMatch(/\.mp4$/);
    await page.close();
  });

  it('continues a job after a reload, and cancels it', async () => {
    const page = await pageWithImage(200);
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")');
    const beforeReload = await stepOf(page);
    await page.reload();
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")');
    await expect.poll(() => stepOf(page), { timeout: 30_000 }).toBeGreaterThan(beforeReload);
    await page.screenshot({ path: join(SHOTS, '4-after-reload.png'), fullPage: true });
    await page.click('button:has-text("Cancel")');
    await page.waitForSelector('text=Cancelled.');
    await page.screenshot({ path: join(SHOTS, '5-cancelled.png'), fullPage: true });
    await page.close();
  });

  it('keeps the crop window on the drawn image for a tall photo', async () => {
    const tall = join(tempDir(), 'tall.png');
    await (await import('sharp')).default({ create: { width: 600, height: 1800, channels: 3, background: '#2a6' } }).png().toFile(tall);
    const page = await newPage();
    await page.goto(server.url);
    await page.waitForSelector('[data-testid=status]:has-text("cpu")');
    await page.setInputFiles('[data-testid=file-input]', tall);
    const img = await page.locator('.crop img').boundingBox();
    const win = await page.locator('[data-testid=crop-window]').boundingBox();
    expect(img!.height).toBeLessThanOrEqual(421);
    // 1024x576 from a 1:3 image: the window spans the full width and sits inside the image.
    expect(Math.abs(win!.width - img!.width)).toBeLessThan(3);
    expect(win!.y).toBeGreaterThanOrEqual(img!.y - 1);
    expect(win!.y + win!.height).toBeLessThanOrEqual(img!.y + img!.height + 1);
    await page.close();
  });

  it('fits a phone screen', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(server.url);
    await page.waitForSelector('[data-testid=status]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(SHOTS, '6-phone.png'), fullPage: true });
    await page.close();
  });

  it('logged no console errors', () => {
    expect(consoleErrors).toEqual([]);
    expect(existsSync(join(SHOTS, '3-result.png'))).toBe(true);
  });
});

describe('the page with an access token', () => {
  it('shows the login screen, and a token in the link opens it straight in', async () => {
    const locked = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-browser-token-'), provider: 'cpu', token: 'browser-token-1' }, () => {});
    try {
      const page = await browser.newPage();
      await page.goto(locked.url);
      await page.waitForSelector('text=Access token');
      await page.fill('#token', 'not-the-token');
      await page.click('button:has-text("Open")');
      await page.waitForSelector('text=that token is not right');
      await page.screenshot({ path: join(SHOTS, '7-login.png') });
      await page.fill('#token', 'browser-token-1');
      await page.click('button:has-text("Open")');
      await page.waitForSelector('[data-testid=status]');
      const fresh = await browser.newPage();
      await fresh.goto(`${locked.url}?token=browser-token-1`);
      await fresh.waitForSelector('[data-testid=status]');
      expect(fresh.url()).not.toContain('token=');
      await page.close();
      await fresh.close();
    } finally {
      await locked.close();
    }
  });
});
