// A page that starts watching a job mid-run (after a reload) gets the job's latest preview at
// once, instead of a blank stage until the next step ends.
import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { WatchReply } from '../common/socket-events.js';
import { startServer, type RunningServer } from '../server/main.js';
import { FIXTURE_INPUT, tempDir, waitFor } from './helpers.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, outputDir: tempDir('svd-watch-'), provider: 'cpu', modelsRoot: tempDir('svd-watch-models-') }, () => {});
  await waitFor(async () => ((await (await fetch(`${server.url}api/health`)).json()) as { status: string }).status === 'ready', 120_000);
}, 150_000);
afterAll(() => server?.close());

it('sends the latest preview with the watch, before the next step makes another', async () => {
  const previews: string[] = [];
  server.service.on('preview', (_id, url) => previews.push(url));
  const form = new FormData();
  form.append('image', new Blob([readFileSync(FIXTURE_INPUT)], { type: 'image/png' }), 'input.png');
  // Slow steps (full width on the CPU), so a step ends long after the watch is answered.
  form.append('settings', JSON.stringify({ width: 1024, height: 512, frames: 4, steps: 4 }));
  const { id } = (await (await fetch(`${server.url}api/jobs`, { method: 'POST', body: form })).json()) as { id: string };
  await waitFor(() => previews.length > 0, 120_000);
  const socket = io(server.url, { transports: ['websocket'] });
  try {
    const got = new Promise<{ url: string; seenSoFar: number }>((ok) => socket.on('preview', (p) => p.id === id && ok({ url: p.url, seenSoFar: previews.length })));
    await new Promise<void>((ok) => socket.on('connect', ok));
    const madeBefore = previews.length;
    const reply = await new Promise<WatchReply>((ok) => socket.emit('watch', id, ok));
    expect(reply.job?.status).toBe('running');
    const { url, seenSoFar } = await got;
    // The one already made, not one from a later step.
    expect(seenSoFar).toBe(madeBefore);
    expect(url).toBe(previews[madeBefore - 1]);
    expect(url).toMatch(/^data:image\/jpeg;base64,/);
  } finally {
    socket.close();
    await fetch(`${server.url}api/jobs/${id}`, { method: 'DELETE' });
  }
});
