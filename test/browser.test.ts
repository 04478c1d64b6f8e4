// The page in real headless Chromium (playwright-core + Debian's chromium) against the real
// server running the tiny demo model on the CPU, at a laptop's and a phone's size. Screenshots of
// each state go to test/screenshots/. The page is built once for every suite (test/global-setup.ts).
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../server/main.js';
import { startCliServer } from './cli-server.js';
import { FIXTURE_MODEL, tempDir, FIXTURE_INPUT } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, 'screenshots');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };
const SIZES = [
  ['1366x900', DESKTOP],
  ['390x844', PHONE],
] as const;
const ADVANCED = ['width', 'height', 'steps', 'noiseAug', 'minGuidance', 'maxGuidance', 'decodeChunk', 'loops'];

let server: RunningServer;
let browser: Browser;
/** The pages below play one person's browser: one client id, which the helpers' API calls send too. */
const CLIENT_ID = 'browserTestClient0001';
const asClient = { headers: { 'x-client-id': CLIENT_ID } };
const consoleErrors: string[] = [];
const INPUT = FIXTURE_INPUT;

async function openPage(viewport: { width: number; height: number } = DESKTOP): Promise<Page> {
  const page = await browser.newPage({ viewport, acceptDownloads: true });
  await page.context().addCookies([{ name: 'svd_client', value: CLIENT_ID, url: server.url }]);
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(server.url);
  await page.waitForSelector('[data-testid=status]:has-text("cpu")');
  return page;
}

async function openAdvanced(page: Page) {
  if (!(await page.locator('details.advanced').evaluate((d: HTMLDetailsElement) => d.open))) await page.click('details.advanced summary');
}

/** Types into the settings form (opening "Advanced" when a field is in it). */
async function fill(page: Page, values: Record<string, string | number>) {
  if (Object.keys(values).some((k) => ADVANCED.includes(k))) await openAdvanced(page);
  for (const [k, v] of Object.entries(values)) await page.fill(`#f-${k}`, String(v));
}

async function pageWithImage(settings: Record<string, string | number> = {}, viewport = DESKTOP): Promise<Page> {
  const page = await openPage(viewport);
  await page.setInputFiles('[data-testid=file-input]', INPUT);
  await page.waitForSelector('[data-testid=model-input]');
  await fill(page, settings);
  return page;
}

const stepOf = async (page: Page) => Number(/step (\d+)\//.exec((await page.textContent('[data-testid=progress-label]').catch(() => '')) ?? '')?.[1] ?? 0);
const jobCount = async () => ((await (await fetch(`${server.url}api/jobs`, asClient)).json()) as unknown[]).length;
const message = (page: Page, field: string) => page.textContent(`[data-testid=${field}-message]`);
const LONG = { width: 128, height: 64, frames: 3, steps: 200 };

/** Cancels every job still queued or running, so the next test starts with an idle server. */
async function cancelAll() {
  const jobs = (await (await fetch(`${server.url}api/jobs`, asClient)).json()) as { id: string; status: string }[];
  for (const j of jobs) if (j.status === 'queued' || j.status === 'running') await fetch(`${server.url}api/jobs/${j.id}`, { method: 'DELETE', ...asClient });
  for (let i = 0; i < 100 && (await (await fetch(`${server.url}api/health`, asClient)).json()).queue.running; i++) await new Promise((r) => setTimeout(r, 100));
}

/** Pairs of visible controls whose boxes overlap, and controls that stick out of the viewport's width. */
async function geometryProblems(page: Page): Promise<{ overlaps: string[]; overflow: string[]; narrowInputs: string[]; unlabelled: string[] }> {
  return page.evaluate(() => {
    const name = (e: Element) =>
      `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.getAttribute('data-testid') ? `[${e.getAttribute('data-testid')}]` : ''}${e.textContent?.trim() ? ` "${e.textContent.trim().slice(0, 30)}"` : ''}`;
    const controls = [...document.querySelectorAll('button, input, select, textarea, a, summary, [role=slider], video, progress')]
      .map((e) => ({ e, r: e.getBoundingClientRect() }))
      .filter(({ e, r }) => r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden');
    const overlaps: string[] = [];
    for (let i = 0; i < controls.length; i++)
      for (let j = i + 1; j < controls.length; j++) {
        const a = controls[i]!;
        const b = controls[j]!;
        if (a.e.contains(b.e) || b.e.contains(a.e)) continue;
        const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
        const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
        if (w > 1 && h > 1) overlaps.push(`${name(a.e)} × ${name(b.e)}`);
      }
    const overflow = controls.filter(({ r }) => r.left < -0.5 || r.right > window.innerWidth + 0.5).map(({ e, r }) => `${name(e)} ${Math.round(r.left)}–${Math.round(r.right)}`);
    if (document.documentElement.scrollWidth > window.innerWidth) overflow.push(`page is ${document.documentElement.scrollWidth} px wide`);
    const narrowInputs = controls.filter(({ e, r }) => e instanceof HTMLInputElement && e.type === 'text' && r.width < 90).map(({ e, r }) => `${name(e)} ${Math.round(r.width)} px`);
    // every field has a label a screen reader can read
    const unlabelled = controls.filter(({ e }) => (e instanceof HTMLInputElement || e instanceof HTMLSelectElement) && !e.labels?.length && !e.getAttribute('aria-label')).map(({ e }) => name(e));
    return { overlaps, overflow, narrowInputs, unlabelled };
  });
}

async function waitReady(url: string, token?: string) {
  const headers = token ? { authorization: `Bearer ${token}` } : undefined;
  while (((await (await fetch(`${url}api/health`, { headers })).json()) as { status: string }).status !== 'ready') await new Promise((r) => setTimeout(r, 100));
}

const inView = (page: Page, selector: string) =>
  page.locator(selector).evaluate((e) => {
    const r = e.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth;
  });

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // No model installed: the server runs the demo model, as on a fresh machine.
  process.env.SVD_MODEL_DIR = join(tempDir('svd-browser-none-'), 'not-installed');
  server = await startServer({ port: 0, outputDir: tempDir('svd-browser-'), provider: 'cpu', modelsRoot: tempDir('svd-browser-models-') }, () => {});
  // The model loads in a worker process; the page reads the status once when it opens.
  await waitReady(server.url);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the page', () => {
  it('starts the demo model with settings that finish in seconds, the common ones first and the rest under Advanced', async () => {
    const page = await openPage();
    expect(await page.inputValue('#f-width')).toBe('256');
    expect(await page.inputValue('#f-height')).toBe('128');
    expect(await page.inputValue('#f-steps')).toBe('8');
    expect(await page.inputValue('#f-frames')).toBe('5');
    for (const f of ['motionBucket', 'frames', 'fps', 'seed']) expect(await page.isVisible(`#f-${f}`)).toBe(true);
    for (const f of ADVANCED) expect(await page.isVisible(`#f-${f}`)).toBe(false);
    await page.click('details.advanced summary');
    for (const f of ADVANCED) expect(await page.isVisible(`#f-${f}`)).toBe(true);
    await page.close();
  });

  it('says what is wrong in plain words next to the field, and why Generate is disabled next to it', async () => {
    const page = await openPage();
    expect(await page.isDisabled('[data-testid=run]')).toBe(true);
    expect(await page.textContent('[data-testid=run-summary]')).toContain('Add an image first');
    await page.setInputFiles('[data-testid=file-input]', INPUT);
    await expect.poll(() => page.isEnabled('[data-testid=run]')).toBe(true);

    const cases: [string, string, string][] = [
      ['frames', '200', 'Frames must be 1–128'],
      ['frames', '', 'Frames must be 1–128'],
      ['frames', '2.5', 'Frames must be a whole number, 1–128'],
      ['motionBucket', 'lots', 'Motion must be 0–1023'],
      ['fps', '0', 'FPS must be 1–60'],
      ['seed', '-5', 'Seed must be 0–9007199254740991'],
      ['width', '100', 'Width must be a multiple of 64, 64–2048'],
      ['steps', '0', 'Steps must be 1–200'],
      ['maxGuidance', '0.5', 'Max guidance must be at least Min guidance'],
    ];
    for (const [field, value, expected] of cases) {
      const before = await page.inputValue(`#f-${field}`);
      await fill(page, { [field]: value });
      await expect.poll(() => message(page, field)).toBe(expected);
      // only the field that was changed complains (auto decode chunk follows a bad frame count quietly)
      expect(await page.locator('small.error').count()).toBe(1);
      expect(await page.isDisabled('[data-testid=run]')).toBe(true);
      expect(await page.textContent('[data-testid=run-summary]')).toContain(expected);
      await page.screenshot({ path: join(SHOTS, `message-${field}.png`) });
      await fill(page, { [field]: before });
      await expect.poll(() => page.isEnabled('[data-testid=run]')).toBe(true);
    }
    // A size being typed is not shown as the model input's (issue 21.7)
    expect(await page.textContent('[data-testid=model-input-caption]')).toBe('Model input 256 × 128');
    await fill(page, { width: 7 });
    await expect.poll(() => page.textContent('[data-testid=model-input-caption]')).toBe('Model input: Width must be a multiple of 64, 64–2048 (drawn at the last valid size, 256 × 128)');
    await fill(page, { width: 256 });
    await expect.poll(() => page.textContent('[data-testid=model-input-caption]')).toBe('Model input 256 × 128');
    // "auto" for the decode chunk is what the server's planner chose for these settings (5 frames: all of them).
    await expect.poll(() => message(page, 'decodeChunk')).toMatch(/^frames decoded together: .*; auto = 5$/);
    await expect.poll(() => page.textContent('[data-testid=plan]')).toMatch(/^; decodes all frames at once, about [\d.]+ GiB of the [\d.]+ GiB of memory free$/);
    await fill(page, { frames: 20 });
    await expect.poll(() => message(page, 'decodeChunk')).toMatch(/; auto = 8$/);
    // A job no machine here can hold is refused before it is sent, in the planner's words.
    await fill(page, { width: 2048, height: 1024, frames: 128 });
    await expect.poll(() => page.textContent('[data-testid=run-summary]')).toMatch(/Not enough memory for this job on the CPU: 128 frames at 2048x1024 need about [\d.]+ GiB/);
    expect(await page.isDisabled('[data-testid=run]')).toBe(true);
    await fill(page, { width: 256, height: 128, frames: 5 });
    await expect.poll(() => page.isEnabled('[data-testid=run]')).toBe(true);
    // "Advanced" stays open while one of its fields is wrong, so the message stays in sight
    await fill(page, { width: 100 });
    await page.click('details.advanced summary');
    await page.waitForTimeout(200); // the toggle event comes a task later
    expect(await page.locator('details.advanced').evaluate((d: HTMLDetailsElement) => d.open)).toBe(true);
    expect(await page.isVisible('#f-width-msg')).toBe(true);
    const text = (await page.textContent('body')) ?? '';
    expect(text).not.toMatch(/Invalid input|expected|Too small|Too big|NaN|motionBucket/);
    await page.close();
  });

  it('uploads, moves the crop, runs with progress and a live preview, plays and downloads the MP4', async () => {
    const page = await pageWithImage({ width: 64, height: 64, frames: 3, steps: 100 });
    // A square output from a 2:1 image leaves room to move the crop window sideways, not up and down.
    expect(await page.isDisabled('input[aria-label="crop horizontal"]')).toBe(false);
    expect(await page.isDisabled('input[aria-label="crop vertical"]')).toBe(true);
    const win = page.locator('[data-testid=crop-window]');
    const before = await win.boundingBox();
    await win.hover();
    await page.mouse.down();
    await page.mouse.move(before!.x + before!.width / 2 - 60, before!.y + before!.height / 2, { steps: 5 });
    await page.mouse.up();
    const after = await win.boundingBox();
    expect(after!.x).toBeLessThan(before!.x - 20);
    expect(Number(await page.inputValue('input[aria-label="crop horizontal"]'))).toBeLessThan(0.5);
    await fill(page, { motionBucket: 180 });

    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")');
    const first = await stepOf(page);
    await expect.poll(() => stepOf(page), { timeout: 30_000 }).toBeGreaterThan(first);
    await page.waitForSelector('[data-testid=preview]', { timeout: 30_000 });
    await page.screenshot({ path: join(SHOTS, 'progress.png'), fullPage: true });

    const video = page.locator('[data-testid=result-video]');
    await video.waitFor({ timeout: 90_000 });
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => (Number.isFinite(v.duration) ? v.duration : 0)), { timeout: 20_000 }).toBeGreaterThan(0);
    // the job's settings read in the page's words
    await page.click('[data-testid=key-settings]');
    const list = (await page.textContent('.settings-list')) ?? '';
    expect(list).toContain('Motion180');
    expect(list).not.toMatch(/motionBucket|noiseAug|pingPong/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Download MP4')]);
    const file = join(tempDir(), 'dl.mp4');
    await download.saveAs(file);
    expect(statSync(file).size).toBeGreaterThan(1000);
    // Named by when it was made and its seed, not by the job's id.
    expect(download.suggestedFilename()).toMatch(/^svd-\d{4}-\d\d-\d\d_\d{6}-seed\d+\.mp4$/);
    await page.close();
  });

  for (const [name, viewport] of SIZES) {
    it(`at ${name}: no control overlaps another, nothing is wider than the screen, and the progress is in view after Generate`, async () => {
      const page = await pageWithImage({}, viewport);
      await page.click('[data-testid=run]');
      await page.locator('[data-testid=result-video]').waitFor({ timeout: 90_000 });
      await page
        .locator('[data-testid=history-thumb]')
        .first()
        .evaluate((i: HTMLImageElement) => i.decode());
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(SHOTS, `page-${name}.png`), fullPage: true });
      await openAdvanced(page);
      // a second, long job: Generate sits below the settings, the progress must still be seen at once
      await fill(page, LONG);
      await page.locator('[data-testid=run]').scrollIntoViewIfNeeded();
      await page.click('[data-testid=run]');
      await page.waitForSelector('[data-testid=progress-label]');
      expect(await inView(page, '[data-testid=progress-label]')).toBe(true);
      await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")', { timeout: 60_000 });
      expect(await inView(page, '[data-testid=progress]')).toBe(true);
      for (const y of [0, 100_000]) {
        await page.evaluate((top) => window.scrollTo(0, top), y);
        expect(await geometryProblems(page)).toEqual({ overlaps: [], overflow: [], narrowInputs: [], unlabelled: [] });
      }
      await cancelAll();
      await page.waitForSelector('text=Cancelled.');
      expect(await geometryProblems(page)).toEqual({ overlaps: [], overflow: [], narrowInputs: [], unlabelled: [] });
      await page.close();
    });
  }

  it('queues one job for a double click on Generate', async () => {
    const page = await pageWithImage(LONG);
    const before = await jobCount();
    await page.dblclick('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")', { timeout: 60_000 });
    await page.waitForTimeout(500);
    expect(await jobCount()).toBe(before + 1);
    expect(await page.locator('[data-testid=other-job]').count()).toBe(0);
    await cancelAll();
    await page.close();
  });

  it("keeps the first job's progress in view when a second one is queued", async () => {
    const page = await pageWithImage(LONG);
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")', { timeout: 60_000 });
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Waiting in the queue")');
    // A queued job says how long it will wait for the one ahead.
    expect(await page.textContent('[data-testid=progress-label]')).toMatch(/position 1 · starts in about \d+(\.\d)? s/);
    const other = page.locator('[data-testid=other-progress-label]');
    await expect.poll(() => other.textContent()).toMatch(/Sampling step \d+\/200 · .* · ETA \d/);
    const step = Number(/step (\d+)/.exec((await other.textContent()) ?? '')![1]);
    await expect.poll(async () => Number(/step (\d+)/.exec((await other.textContent()) ?? '')?.[1] ?? 0), { timeout: 30_000 }).toBeGreaterThan(step);
    await page.screenshot({ path: join(SHOTS, 'two-jobs.png'), fullPage: true });
    await cancelAll();
    await page.close();
  });

  it('keeps the image, the crop and the settings across a reload, and "Load these settings" brings them back', async () => {
    const page = await pageWithImage({ width: 128, height: 128, frames: 3, steps: 2 });
    await fill(page, { motionBucket: 180, seed: 42, fps: 9 });
    await page.focus('[data-testid=crop-window]');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    const box = await page.locator('[data-testid=crop-window]').boundingBox();
    const x = await page.inputValue('input[aria-label="crop horizontal"]');
    expect(Number(x)).toBeCloseTo(0.4, 5);
    await page.waitForTimeout(300); // the image goes to IndexedDB asynchronously
    await page.reload();
    await page.waitForSelector('[data-testid=crop-window]');
    expect(await page.inputValue('input[aria-label="crop horizontal"]')).toBe(x);
    expect(await page.locator('[data-testid=crop-window]').boundingBox()).toEqual(box);
    expect(await page.inputValue('#f-motionBucket')).toBe('180');
    expect(await page.inputValue('#f-seed')).toBe('42');
    expect(await page.inputValue('#f-fps')).toBe('9');
    expect(await page.inputValue('#f-width')).toBe('128');
    expect(await page.isEnabled('[data-testid=run]')).toBe(true);

    await page.click('[data-testid=run]');
    await page.locator('[data-testid=result-video]').waitFor({ timeout: 60_000 });
    // Something else in the form, another image, another crop…
    const other = join(tempDir(), 'other.png');
    await sharp({ create: { width: 300, height: 600, channels: 3, background: '#2a6' } })
      .png()
      .toFile(other);
    await page.setInputFiles('[data-testid=file-input]', other);
    await expect.poll(() => page.locator('.crop img').evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(300);
    await fill(page, { motionBucket: 10, seed: '', width: 256 });
    // …and the job's own come back.
    await page.click('button:has-text("Load these settings")');
    await expect.poll(() => page.locator('.crop img').evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(128);
    expect(await page.inputValue('#f-motionBucket')).toBe('180');
    expect(await page.inputValue('#f-seed')).toBe('42');
    expect(await page.inputValue('#f-width')).toBe('128');
    expect(await page.inputValue('input[aria-label="crop horizontal"]')).toBe(x);
    await page.close();
  });

  it('continues a job after a reload, and cancels it: the summary keeps the typed seed, and the last finished video stays', async () => {
    // Four times LONG's pixels: the 200 steps must outlast the reload, so that Cancel lands while
    // it samples (a fast machine could reach decoding first, where the job ends done instead).
    const page = await pageWithImage({ ...LONG, width: 256, height: 128, seed: 99 });
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")', { timeout: 60_000 });
    const beforeReload = await stepOf(page);
    await page.reload();
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")');
    await expect.poll(() => stepOf(page), { timeout: 30_000 }).toBeGreaterThan(beforeReload);
    await page.click('.output button:has-text("Cancel")');
    await page.waitForSelector('text=Cancelled.');
    expect(await page.textContent('[data-testid=key-settings]')).toContain('seed 99');
    await page.locator('[data-testid=last-video]').waitFor();
    expect(await page.textContent('.last-video figcaption')).toMatch(/The last finished video/);
    await page.close();
  });

  it('shows a frame of each video in the history, with the time and key settings; running jobs show their image', async () => {
    const page = await pageWithImage({ frames: 3, steps: 2, seed: 7 });
    await page.click('[data-testid=run]');
    await page.locator('[data-testid=result-video]').waitFor({ timeout: 60_000 });
    await fill(page, LONG);
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")', { timeout: 60_000 });
    const items = page.locator('[data-testid=history-item]');
    const running = items.nth(0);
    const done = items.nth(1);
    await expect.poll(() => done.locator('img').getAttribute('src')).toMatch(/\/poster\.jpg$/);
    await expect.poll(() => done.locator('img').evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth)).toBe(256);
    const caption = (await done.textContent()) ?? '';
    expect(caption).toMatch(/\d{1,2}:\d{2}/);
    expect(caption).toContain('256×128 · 3 frames · 2 steps · motion 127 · 7 fps · seed 7');
    expect(await running.locator('img').getAttribute('src')).toMatch(/\/input\.png$/);
    await expect.poll(() => running.locator('img').evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0)).toBe(true);
    expect(await running.textContent()).toContain('running');
    const early = await fetch(`${server.url}api/jobs/${(await (await fetch(`${server.url}api/health`, asClient)).json()).queue.running}/poster.jpg`, asClient);
    expect(early.status).toBe(404);
    expect(((await early.json()) as { error: string }).error).toMatch(/is running; it has no video to take a frame from/);
    // the poster is a frame of the generated video, not the input photo
    const poster = await (await fetch(`${server.url}${(await done.locator('img').getAttribute('src'))!.slice(1)}`, asClient)).arrayBuffer();
    const meta = await sharp(Buffer.from(poster)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 256, 128]);
    await cancelAll();
    await page.close();
  });

  it('highlights the drop zone while a file is dragged over it, and forgets an old image error', async () => {
    const page = await openPage();
    const zone = page.locator('[data-testid=drop-zone]');
    const data = await page.evaluateHandle(() => new DataTransfer());
    await zone.dispatchEvent('dragenter', { dataTransfer: data });
    await expect.poll(() => zone.getAttribute('class')).toContain('dragging');
    await zone.dispatchEvent('dragleave', { dataTransfer: data });
    await expect.poll(() => zone.getAttribute('class')).not.toContain('dragging');

    const bad = join(tempDir(), 'notes.png');
    writeFileSync(bad, 'not a picture');
    await page.setInputFiles('[data-testid=file-input]', bad);
    await expect.poll(() => page.textContent('[data-testid=image-error]')).toMatch(/notes\.png is not an image/);
    await page.setInputFiles('[data-testid=file-input]', INPUT);
    await page.waitForSelector('[data-testid=model-input]');
    expect(await page.locator('[data-testid=image-error]').count()).toBe(0);
    // 2:1 image, 2:1 video: the crop cannot move, and neither can its sliders
    expect(await page.isDisabled('input[aria-label="crop horizontal"]')).toBe(true);
    expect(await page.isDisabled('input[aria-label="crop vertical"]')).toBe(true);
    await page.close();
  });

  it('keeps the good image when a file it cannot show comes after it, and Generate sends the good one', async () => {
    const bad = join(tempDir(), 'photo.heic');
    writeFileSync(bad, 'not a picture this browser can show');
    // On a fresh page a bad file is no image: Generate stays disabled, and says why.
    const fresh = await openPage();
    await fresh.setInputFiles('[data-testid=file-input]', bad);
    await expect.poll(() => fresh.textContent('[data-testid=image-error]')).toMatch(/photo\.heic is not an image/);
    expect(await fresh.textContent('[data-testid=image-error]')).not.toContain('kept');
    expect(await fresh.isDisabled('[data-testid=run]')).toBe(true);
    expect(await fresh.textContent('[data-testid=run-summary]')).toContain('Add an image first');
    await fresh.close();

    const page = await pageWithImage({ frames: 2, steps: 1, seed: 5 });
    await page.setInputFiles('[data-testid=file-input]', bad);
    await expect.poll(() => page.textContent('[data-testid=image-error]')).toMatch(/photo\.heic is not an image.*the image above is kept/);
    expect(await page.locator('.crop img').evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(128);
    // Still the good image after a reload, and that is what Generate sends.
    await page.reload();
    await page.waitForSelector('[data-testid=model-input]');
    expect(await page.locator('.crop img').evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(128);
    expect(await page.isDisabled('[data-testid=run]')).toBe(false);
    const [upload] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/jobs')), page.click('[data-testid=run]')]);
    expect(upload.status()).toBe(202);
    await page.locator('[data-testid=result-video]').waitFor({ timeout: 60_000 });
    const jobs = (await (await fetch(`${server.url}api/jobs`, asClient)).json()) as { id: string; inputName: string }[];
    const sent = await sharp(Buffer.from(await (await fetch(`${server.url}api/jobs/${jobs[0]!.id}/input.png`, asClient)).arrayBuffer())).metadata();
    expect([sent.width, sent.height]).toEqual([128, 64]);
    await page.close();
  });

  it('keeps a portrait model-input preview small and the crop window on a tall photo', async () => {
    const tall = join(tempDir(), 'tall.png');
    await sharp({ create: { width: 600, height: 1800, channels: 3, background: '#2a6' } })
      .png()
      .toFile(tall);
    const page = await openPage(PHONE);
    await page.setInputFiles('[data-testid=file-input]', tall);
    await fill(page, { width: 576, height: 1024 });
    const canvas = await page.locator('[data-testid=model-input]').boundingBox();
    expect(canvas!.height).toBeLessThanOrEqual(161);
    const img = await page.locator('.crop img').boundingBox();
    const win = await page.locator('[data-testid=crop-window]').boundingBox();
    expect(img!.height).toBeLessThanOrEqual(361);
    // 576x1024 from a 1:3 image: the window spans the full width and sits inside the image.
    expect(Math.abs(win!.width - img!.width)).toBeLessThan(3);
    expect(win!.y).toBeGreaterThanOrEqual(img!.y - 1);
    expect(win!.y + win!.height).toBeLessThanOrEqual(img!.y + img!.height + 1);
    expect(await geometryProblems(page)).toEqual({ overlaps: [], overflow: [], narrowInputs: [], unlabelled: [] });
    await page.close();
  });

  it('logged no console errors', () => {
    expect(consoleErrors).toEqual([]);
    expect(existsSync(join(SHOTS, 'page-1366x900.png'))).toBe(true);
  });
});

describe('the page while the model loads', () => {
  it('says so, then shows the provider without a reload', async () => {
    // An empty ONNX cache: the worker converts the model first, so it is still loading when the page opens.
    const cache = process.env.SVD_STUDIO_CACHE;
    process.env.SVD_STUDIO_CACHE = tempDir('svd-browser-cache-');
    const fresh = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-browser-loading-'), provider: 'cpu' }, () => {});
    if (cache === undefined) delete process.env.SVD_STUDIO_CACHE;
    else process.env.SVD_STUDIO_CACHE = cache;
    try {
      const page = await browser.newPage();
      await page.goto(fresh.url);
      await page.waitForSelector('[data-testid=status]:has-text("loading")');
      // The status follows by itself once the worker is ready.
      await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent?.includes('cpu (float32)'), undefined, { timeout: 60_000 });
      await page.close();
    } finally {
      await fresh.close();
    }
  });
});

describe('the page when the server goes away', () => {
  it('says so in the progress panel, disables Cancel and Generate, and after a restart says what became of the job', async () => {
    const out = tempDir('svd-browser-killed-');
    const first = await startCliServer(['--output-dir', out]);
    const port = new URL(first.url).port;
    let second: Awaited<ReturnType<typeof startCliServer>> | undefined;
    try {
      const page = await browser.newPage({ viewport: DESKTOP });
      await page.goto(first.url);
      await page.waitForSelector('[data-testid=status]:has-text("cpu")');
      await page.setInputFiles('[data-testid=file-input]', INPUT);
      await page.waitForSelector('[data-testid=model-input]');
      await fill(page, LONG);
      await page.click('[data-testid=run]');
      await page.waitForSelector('[data-testid=progress-label]:has-text("Sampling")', { timeout: 60_000 });

      await first.stop('SIGKILL');
      const offline = page.locator('[data-testid=offline]');
      await offline.waitFor({ timeout: 15_000 });
      expect(await inView(page, '[data-testid=offline]')).toBe(true);
      expect(await offline.textContent()).toMatch(/Lost the connection to the server/);
      // Nothing claims the job goes on: the label is the last news, without an ETA.
      expect(await offline.textContent()).not.toMatch(/keep running/);
      const label = (await page.textContent('[data-testid=progress-label]')) ?? '';
      expect(label).toMatch(/^Last news from the server: Sampling step \d+/);
      expect(label).not.toContain('ETA');
      expect(await page.isDisabled('.output button:has-text("Cancel")')).toBe(true);
      expect(await page.isDisabled('[data-testid=run]')).toBe(true);
      expect(await page.textContent('[data-testid=run-summary]')).toContain('The server cannot be reached');
      await page.screenshot({ path: join(SHOTS, 'server-gone.png') });

      second = await startCliServer(['--output-dir', out, '--port', port]);
      // Back: the job did not survive the kill, and the panel says so; Generate works again.
      await page.waitForSelector('[data-testid=reconnected]', { timeout: 30_000 });
      expect(await page.textContent('[data-testid=reconnected]')).toMatch(/restarted and this job did not survive/);
      expect(await page.textContent('[data-testid=job-outcome]')).toMatch(/the server stopped before this job finished/);
      expect(await page.locator('[data-testid=offline]').count()).toBe(0);
      expect(await page.locator('.output button:has-text("Cancel")').count()).toBe(0);
      await expect.poll(() => page.isDisabled('[data-testid=run]'), { timeout: 30_000 }).toBe(false);
      await page.close();
    } finally {
      await first.stop('SIGKILL');
      await second?.stop();
    }
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
      await page.screenshot({ path: join(SHOTS, 'login.png') });
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

describe('two browsers and a sibling page on one shared link (issue 21)', () => {
  // Two host names under one made-up site, both mapped to this machine, as x.loca.lt and
  // evil.loca.lt are for the tunnel: the browser counts the sibling as "same site" and sends it
  // the owner's SameSite=Lax cookies.
  const TOKEN = 'browser-two-hosts-1';
  let shared: RunningServer;
  let chromiumHosts: Browser;
  let owner: string;
  let sibling: string;
  /** The sibling's own server: a blank page without our CSP, as someone else's page would be. */
  let siblingServer: HttpServer;

  beforeAll(async () => {
    shared = await startServer({ model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-browser-shared-'), provider: 'cpu', token: TOKEN }, () => {});
    await waitReady(shared.url, TOKEN);
    const port = new URL(shared.url).port;
    owner = `http://owner.studio.test:${port}/`;
    siblingServer = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>sibling</title>'));
    await new Promise<void>((ok) => siblingServer.listen(0, '127.0.0.1', () => ok()));
    sibling = `http://evil.studio.test:${(siblingServer.address() as { port: number }).port}/`;
    chromiumHosts = await chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, '--host-resolver-rules=MAP *.studio.test 127.0.0.1'] });
  }, 120_000);
  afterAll(async () => {
    await chromiumHosts?.close();
    await shared?.close();
    siblingServer?.close();
  });

  const historyIds = (page: Page) => page.evaluate(async () => ((await (await fetch('/api/jobs')).json()) as { id: string }[]).map((j) => j.id));

  it('each browser sees only its own jobs; the sibling page creates, cancels and reads nothing, and its tossed cookie locks no one out', async () => {
    const alice = await chromiumHosts.newContext();
    const bob = await chromiumHosts.newContext();
    try {
      const a = await alice.newPage();
      await a.goto(`${owner}?token=${TOKEN}`);
      await a.waitForSelector('[data-testid=status]:has-text("cpu")');
      await a.setInputFiles('[data-testid=file-input]', INPUT);
      await a.waitForSelector('[data-testid=model-input]');
      await fill(a, { width: 64, height: 64, frames: 3, steps: 2 });
      await a.click('[data-testid=run]');
      await a.locator('[data-testid=history-item]').first().waitFor();
      const [job] = await historyIds(a);
      expect(job).toMatch(/^[a-z0-9]{16}$/);

      const b = await bob.newPage();
      await b.goto(`${owner}?token=${TOKEN}`);
      await b.waitForSelector('[data-testid=status]:has-text("cpu")');
      expect(await historyIds(b)).toEqual([]);
      expect(await b.locator('[data-testid=history-item]').count()).toBe(0);
      expect(await b.evaluate(async (id) => (await fetch(`/api/jobs/${id}/input.png`)).status, job)).toBe(404);

      // A page on the sibling host, in Alice's browser: her cookies go with its requests.
      const evil = await alice.newPage();
      await evil.goto(`${sibling}no-such-page`);
      const attempts = await evil.evaluate(
        async ({ target, id }) => {
          const form = new FormData();
          const canvas = Object.assign(document.createElement('canvas'), { width: 64, height: 64 });
          const png = await new Promise<Blob>((done) => canvas.toBlob((b) => done(b!), 'image/png'));
          form.append('image', png, 'x.png');
          form.append('settings', '{"width":64,"height":64,"frames":2,"steps":1}');
          const send = (path: string, init: RequestInit) =>
            fetch(target + path, { ...init, mode: 'no-cors', credentials: 'include' }).then(
              () => 'sent',
              (e: Error) => `refused: ${e.message}`,
            );
          const posts = [
            await send('api/jobs', { method: 'POST', body: form }),
            await send(`api/jobs/${id}/rerun`, { method: 'POST', body: '' }),
            await send(`api/jobs/${id}/rerun`, { method: 'POST', body: '{}', headers: { 'content-type': 'text/plain' } }),
          ];
          const socket = await new Promise<string>((done) => {
            const ws = new WebSocket(`${target.replace('http', 'ws')}socket.io/?EIO=4&transport=websocket`);
            ws.onmessage = (m) => done(`open: ${String(m.data).slice(0, 20)}`);
            ws.onerror = () => done('refused');
            ws.onclose = () => done('refused');
            setTimeout(() => done('no answer'), 5000);
          });
          // Cookie tossing: a token cookie for the whole site, sent before Alice's on /api (the page's own way, as the probe did).
          // biome-ignore lint/suspicious/noDocumentCookie: the attack under test is exactly this assignment
          document.cookie = 'svd_token=tossed; domain=studio.test; path=/api';
          for (let i = 0; i < 15; i++) await fetch(`${target}api/health?token=wrong-${i}`, { mode: 'no-cors', credentials: 'include' }).catch(() => {});
          return { posts, socket };
        },
        { target: owner, id: job },
      );
      // The browser sends them and then hides the answers (helmet's Cross-Origin-Resource-Policy);
      // what counts is that the server did nothing, below.
      expect(attempts.posts).toHaveLength(3);
      expect(attempts.socket).toBe('refused');
      // Nothing was made or cancelled, and Alice's page still opens without the login screen.
      expect(await historyIds(a)).toEqual([job]);
      expect(await a.evaluate(async (id) => ((await (await fetch(`/api/jobs/${id}`)).json()) as { status: string }).status, job)).not.toBe('cancelled');
      await a.reload();
      await a.waitForSelector('[data-testid=status]:has-text("cpu")');
      expect(await a.locator('text=Access token').count()).toBe(0);
      expect(await a.evaluate(async () => (await fetch('/api/jobs')).status)).toBe(200);

      // Alice deletes her job once it has ended: gone from her history and from the server.
      await expect.poll(() => a.evaluate(async (id) => ((await (await fetch(`/api/jobs/${id}`)).json()) as { status: string }).status, job), { timeout: 60_000 }).toBe('done');
      a.once('dialog', (d) => void d.accept());
      await a.locator('[data-testid=history-delete]').first().click();
      await expect.poll(() => a.locator('[data-testid=history-item]').count()).toBe(0);
      expect(await a.evaluate(async (id) => (await fetch(`/api/jobs/${id}`)).status, job)).toBe(404);
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
