// Bounded load test on loopback: N socket.io clients watch J queued jobs on the real server
// (tiny model, CPU); every client must receive every event the server sent for every job, and
// memory must come back after the run. Prints one line per measure.
//   npm run load-test -- [--clients 50] [--jobs 20]
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { io as ioClient, type Socket } from 'socket.io-client';
import { startServer } from '../server/main.js';
import { machineLine } from './bench-env.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

export interface LoadResult {
  clients: number;
  jobs: number;
  eventsSent: number;
  eventsReceived: number;
  lost: number;
  queueFullAnswered: boolean;
  seconds: number;
  rssStartMiB: number;
  rssPeakMiB: number;
  rssEndMiB: number;
  heapStartMiB: number;
  heapEndMiB: number;
}

const mib = (b: number) => Math.round(b / 2 ** 20);

export async function runLoadTest(clients: number, jobs: number, modelDir: string, fixturePng: Buffer): Promise<LoadResult> {
  const server = await startServer({ model: modelDir, port: 0, outputDir: mkdtempSync(join(tmpdir(), 'svd-load-')), provider: 'cpu' }, (l) => process.env.LOAD_TEST_VERBOSE && console.error(l));
  const gc = (globalThis as { gc?: () => void }).gc;
  try {
    for (;;) {
      const h = (await (await fetch(`${server.url}api/health`)).json()) as { status: string };
      if (h.status === 'ready') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    gc?.();
    const rssStart = process.memoryUsage().rss;
    const heapStart = process.memoryUsage().heapUsed;
    let rssPeak = rssStart;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);
    const started = performance.now();

    // Hold the queue: the first job runs long enough for all the others to wait behind it.
    const submit = async (settings: object) => {
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(fixturePng)]), 'in.png');
      form.append('settings', JSON.stringify(settings));
      return fetch(`${server.url}api/jobs`, { method: 'POST', body: form });
    };
    const ids: string[] = [];
    for (let i = 0; i < jobs; i++) {
      const r = await submit({ width: 128, height: 64, frames: 3, steps: i === 0 ? 150 : 2, formats: ['mp4'], saveToFolder: false });
      ids.push(((await r.json()) as { id: string }).id);
    }
    // With the first job running, the queue holds jobs − 1; fill it to the limit and one more.
    let queueFullAnswered = false;
    const extra: string[] = [];
    for (let i = server.service.queueLength; i <= server.service.maxQueue; i++) {
      const r = await submit({ width: 128, height: 64, frames: 3, steps: 2, saveToFolder: false });
      if (r.status === 503) queueFullAnswered = true;
      else extra.push(((await r.json()) as { id: string }).id);
    }
    for (const id of extra) await fetch(`${server.url}api/jobs/${id}`, { method: 'DELETE' });

    const sockets: Socket[] = await Promise.all(
      Array.from(
        { length: clients },
        () =>
          new Promise<Socket>((ok) => {
            const s = ioClient(server.url, { transports: ['websocket'] });
            s.once('connect', () => ok(s));
          }),
      ),
    );
    const received = sockets.map(() => new Map<string, number>());
    const done = sockets.map(() => new Set<string>());
    sockets.forEach((s, k) =>
      s.on('job', (j: { id: string; status: string }) => {
        received[k]!.set(j.id, (received[k]!.get(j.id) ?? 0) + 1);
        if (['done', 'failed', 'cancelled'].includes(j.status)) done[k]!.add(j.id);
      }),
    );
    // Count what the server emits to each room from the moment every client has joined.
    const sent = new Map<string, number>();
    server.service.on('update', (j) => sent.set(j.id, (sent.get(j.id) ?? 0) + 1));
    const terminal = (status?: string) => status === 'done' || status === 'failed' || status === 'cancelled';
    await Promise.all(
      sockets.flatMap((s, k) =>
        ids.map(async (id) => {
          const ack = (await s.emitWithAck('watch', id)) as { job?: { status: string } };
          if (terminal(ack.job?.status)) done[k]!.add(id);
        }),
      ),
    );
    // Only events emitted after every client had joined every room are compared.
    const sentBefore = new Map(sent);
    received.forEach((r) => r.clear());
    await new Promise<void>((ok) => {
      const t = setInterval(() => {
        if (done.every((d) => ids.every((id) => d.has(id)))) {
          clearInterval(t);
          ok();
        }
      }, 50);
    });
    await new Promise((r) => setTimeout(r, 200));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    for (const [id, n] of sentBefore) sent.set(id, (sent.get(id) ?? 0) - n);
    const eventsSent = [...sent.values()].reduce((a, b) => a + b, 0) * clients;
    // Events delivered before `sent` started counting are not compared: count per job from then on.
    let lost = 0;
    let eventsReceived = 0;
    for (const r of received) {
      for (const id of ids) {
        const got = r.get(id) ?? 0;
        eventsReceived += Math.min(got, sent.get(id) ?? 0);
        if (got < (sent.get(id) ?? 0)) lost += (sent.get(id) ?? 0) - got;
      }
    }
    sockets.forEach((s) => s.close());
    await new Promise((r) => setTimeout(r, 200));
    gc?.();
    return {
      clients,
      jobs,
      eventsSent,
      eventsReceived,
      lost,
      queueFullAnswered,
      seconds: +seconds.toFixed(1),
      rssStartMiB: mib(rssStart),
      rssPeakMiB: mib(rssPeak),
      rssEndMiB: mib(process.memoryUsage().rss),
      heapStartMiB: mib(heapStart),
      heapEndMiB: mib(process.memoryUsage().heapUsed),
    };
  } finally {
    await server.close();
  }
}

if (process.argv[1]?.endsWith('load-test.ts')) {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '50' }, jobs: { type: 'string', default: '20' } } });
  const root = join(import.meta.dirname, '..');
  console.log(machineLine('cpu'));
  const r = await runLoadTest(Number(values.clients), Number(values.jobs), join(root, 'demo/svd-tiny/model'), readFileSync(join(root, 'demo/svd-tiny/input.png')));
  for (const [k, v] of Object.entries(r)) console.log(`${k}: ${v}`);
}
