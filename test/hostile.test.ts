// Hostile input against the real server process (cli/start.ts with --token, tiny model, CPU):
// for every REST route, the socket.io handshake and every socket.io event, generated payloads of
// wrong types and sizes (fast-check) and a table of known attacks. Each answer must be a 4xx with
// a plain JSON message (or a refused connection), and afterwards the same process must still
// serve, without ever having reached its last resort. Traffic goes to 127.0.0.1 only; each
// property runs a bounded number of cases.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import fc from 'fast-check';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailedLoginThrottle } from '../server/auth.js';
import { clientAddress } from '../server/client-address.js';
import { LAST_RESORT_PREFIX } from '../server/last-resort.js';
import { startServer, type RunningServer } from '../server/main.js';
import { FolderInUseError, LOCK_FILE, lockOutputFolder } from '../server/output-lock.js';
import { FRAMES_FILE, JobFinisher } from '../server/jobs/job-finisher.js';
import { JobStore } from '../server/jobs/job-store.js';
import { jobSettingsSchema } from '../server/jobs/job.js';
import { LocalTunnel } from '../server/tunnel.js';
import { createServer as createHttpServer } from 'node:http';
import { multipart, send, startCliServer, type CliServer, type Reply } from './cli-server.js';
import { FIXTURE, FIXTURE_MODEL, tempDir, FIXTURE_INPUT, waitFor } from './helpers.js';
import sharp from 'sharp';

const TOKEN = 'hostile-suite-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
const png = readFileSync(FIXTURE_INPUT);
const small = { width: 128, height: 64, frames: 3, steps: 2, fps: 8, saveToFolder: false };

/** A new loopback source address per case, so the wrong-token throttle never hides a parser path. */
let nextAddress = 0;
const freshAddress = () => {
  nextAddress++;
  return `127.0.${1 + (nextAddress >> 8)}.${1 + ((nextAddress & 0xff) % 254)}`;
};

/** A client error: 4xx, and a JSON body whose "error" is one plain sentence (no stack, no path). */
function expectClientError(r: Reply, what: string) {
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
  const body = JSON.parse(r.text) as { error?: unknown };
  expect(typeof body.error, what).toBe('string');
  expect(body.error as string, what).not.toMatch(/\n\s+at |\/work\/|node_modules|internal error/);
}

/** Socket.io over raw long-polling: opens a session, sends `packet`, and returns what comes back. */
async function rawSocket(base: string, packets: string[], opts: { headers?: Record<string, string>; from?: string } = {}): Promise<string> {
  const q = 'socket.io/?EIO=4&transport=polling';
  const open = await send(base, 'GET', q, opts);
  expect(open.status).toBe(200);
  const sid = (JSON.parse(open.text.slice(1)) as { sid: string }).sid;
  for (const p of packets) await send(base, 'POST', `${q}&sid=${sid}`, { ...opts, body: p, headers: { ...opts.headers, 'content-type': 'text/plain;charset=UTF-8' } });
  const poll = await send(base, 'GET', `${q}&sid=${sid}`, { ...opts, timeoutMs: 5000 }).catch((e: Error) => ({ status: 0, text: `(${e.message})`, headers: {} }));
  return poll.status === 200 ? poll.text : `HTTP ${poll.status} ${poll.text}`;
}
const refusedOrClosed = (reply: string) => !/(^|\x1e)40\{"sid"/.test(reply);

/** A PNG whose header says width × height; no pixel data needs to follow for the size check. */
function pngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

function jobForm(settings: unknown, image: Uint8Array = png, name = 'in.png') {
  return multipart([
    { name: 'image', filename: name, data: image },
    { name: 'settings', data: typeof settings === 'string' ? settings : JSON.stringify(settings) },
  ]);
}
const postJob = (base: string, form: { body: Buffer; contentType: string }, headers: Record<string, string> = auth, from?: string) =>
  send(base, 'POST', 'api/jobs', { headers: { ...headers, 'content-type': form.contentType }, body: form.body, from });

function connectIo(base: string, token = TOKEN): Promise<Socket> {
  const socket = ioClient(base, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((ok, fail) => {
    socket.once('connect', () => ok(socket));
    socket.once('connect_error', fail);
  });
}

describe('hostile input against the server process', () => {
  let server: CliServer;
  let jobId: string;
  const out = tempDir('svd-hostile-');

  beforeAll(async () => {
    server = await startCliServer(['--token', TOKEN, '--output-dir', out, '--job-rate-limit', '1000'], { token: TOKEN });
    const r = await postJob(server.url, jobForm(small));
    expect(r.status).toBe(202);
    jobId = (JSON.parse(r.text) as { id: string }).id;
    for (let i = 0; i < 600; i++) {
      const j = JSON.parse((await send(server.url, 'GET', `api/jobs/${jobId}`, { headers: auth })).text) as { status: string };
      if (j.status === 'done') break;
      await new Promise((ok) => setTimeout(ok, 100));
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  describe('the crashes found in issue 11', () => {
    it('a handshake token of another type than text is refused, the process lives', async () => {
      for (const token of ['1', 'true', 'false', '{}', '[]', '{"toString":1}', '["a","b"]', '1e999', `"${'x'.repeat(100_000)}"`]) {
        const reply = await rawSocket(server.url, [`40{"token":${token}}`], { from: freshAddress() });
        expect(reply, token.slice(0, 40)).toMatch(/^44\{"message":"the access token must be text/);
      }
      expect(server.alive()).toBe(true);
    });

    it('a cookie that is not valid percent-encoding is no token: refused on socket.io, 401 on REST', async () => {
      const cookie = { cookie: 'svd_token=%E0%A4%A' };
      expect(await rawSocket(server.url, ['40'], { headers: cookie })).toMatch(/^44\{"message":"access token required/);
      const r = await send(server.url, 'GET', 'api/jobs', { headers: cookie });
      expect(r.status).toBe(401);
      expectClientError(r, 'bad cookie');
      expect(server.alive()).toBe(true);
    });

    it('the step limit holds however the schedule is given, checked at submission', async () => {
      const sigmas = Array.from({ length: 9001 }, (_, i) => 9001 - i - 1 + 0.5).map((s, i, a) => (i === a.length - 1 ? 0 : s / 10));
      const cases: [unknown, RegExp][] = [
        [{ ...small, sigmas }, /at most 201 sigmas/],
        [{ ...small, sigmas: [1e308, 0] }, /at most 5000/],
        [{ ...small, sigmas: [1, 2, 0] }, /strictly decreasing/],
        [{ ...small, sigmas: [3, 0, 0] }, /strictly decreasing|only the last/],
        [{ ...small, steps: 201 }, /steps/],
        [{ ...small, formats: ['mp4', 'mp4'] }, /each format once/],
      ];
      for (const [settings, message] of cases) {
        const r = await postJob(server.url, jobForm(settings));
        expect(r.status, r.text.slice(0, 200)).toBe(400);
        expect((JSON.parse(r.text) as { error: string }).error).toMatch(message);
      }
    });

    it('uploads: 900 megapixels get the pixel-limit message, HEIC a plain one, a cut-off body a 400', async () => {
      const huge = await postJob(server.url, jobForm(small, pngHeader(30_000, 30_000)));
      expect(huge.status).toBe(413);
      expect(JSON.parse(huge.text).error).toMatch(/900 megapixels, over the 50 MP limit/);
      const heic = await postJob(server.url, jobForm(small, readFileSync(join(FIXTURE, '..', 'uploads', 'photo.heic')), 'IMG_0001.HEIC'));
      expect(heic.status).toBe(415);
      expect(JSON.parse(heic.text).error).toMatch(/^HEIC photos \(the iPhone's default\) cannot be read here; use a PNG, JPEG/);
      expect(heic.text).not.toMatch(/heif:|plugin|libde265|bad seek/);
      const form = jobForm(small);
      for (const cut of [10, 60, 200, form.body.length - 30]) {
        const r = await postJob(server.url, { ...form, body: form.body.subarray(0, cut) });
        expect(r.status, `cut at ${cut}`).toBe(400);
        expectClientError(r, `cut at ${cut}`);
      }
    });
  });

  describe('REST routes', () => {
    const routes = (id: string) =>
      [
        ['GET', 'api/health'],
        ['GET', 'api/jobs'],
        ['POST', 'api/jobs'],
        ['GET', `api/jobs/${id}`],
        ['DELETE', `api/jobs/${id}`],
        ['POST', `api/jobs/${id}/rerun`],
        ['POST', `api/jobs/${id}/continue`],
        ['POST', 'api/plan'],
        ['GET', `api/jobs/${id}/input.png`],
        ['GET', `api/jobs/${id}/video.mp4`],
        ['GET', `api/jobs/${id}/video.webm`],
        ['GET', `api/jobs/${id}/poster.jpg`],
      ] as const;

    it('every route refuses requests without the token or with a malformed one', async () => {
      const tokenish = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('%E0%A4%A', '%', '%00', 'a'.repeat(5000), TOKEN.slice(0, -1)));
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes(jobId)), fc.constantFrom('authorization', 'x-access-token', 'cookie', 'query'), tokenish, async ([method, path], where, value) => {
          const v = encodeURIComponent(value);
          const headers: Record<string, string> =
            where === 'authorization'
              ? { authorization: `Bearer ${v}` }
              : where === 'x-access-token'
                ? { 'x-access-token': v }
                : where === 'cookie'
                  ? { cookie: `svd_token=${value.replace(/[^\x21-\x7e]/g, '')}` }
                  : {};
          const r = await send(server.url, method, where === 'query' ? `${path}?token=${v}` : path, { headers, from: freshAddress() });
          expect([400, 401]).toContain(r.status);
          expectClientError(r, `${method} ${path} ${where}=${v.slice(0, 40)}`);
        }),
        { numRuns: 120 },
      );
      for (const query of ['token=a&token=b', 'token[x]=1', `token=${'%FF'.repeat(10)}`]) {
        const r = await send(server.url, 'GET', `api/jobs?${query}`, { from: freshAddress() });
        expectClientError(r, query);
      }
    });

    it('ids and paths of every shape give 4xx', async () => {
      const ids = fc.oneof(
        fc.string({ minLength: 1, maxLength: 60 }).map(encodeURIComponent),
        fc.constantFrom('%E0%A4%A', '%', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', '%00', 'a'.repeat(16), 'A'.repeat(16), jobId.toUpperCase(), `${jobId}%00`, 'x'.repeat(4000)),
      );
      await fc.assert(
        fc.asyncProperty(
          ids,
          fc.constantFrom('', '/rerun', '/continue', '/input.png', '/video.mp4', '/video.avi', '/video.', '/video.%E0%A4%A', '/poster.jpg', '/x/y'),
          fc.constantFrom('GET', 'DELETE', 'POST', 'PUT', 'PATCH'),
          async (id, tail, method) => {
            const r = await send(server.url, method, `api/jobs/${id}${tail}`, { headers: { ...auth, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
            expectClientError(r, `${method} ${id.slice(0, 40)}${tail}`);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('POST /api/jobs: settings of every wrong type and size are 4xx', async () => {
      const keys = [
        'width',
        'height',
        'framing',
        // the flat names job records had before framing was nested, still read
        'resize',
        'cropX',
        'cropY',
        'frames',
        'steps',
        'sigmas',
        'fps',
        'motionBucket',
        'noiseAug',
        'minGuidance',
        'maxGuidance',
        'decodeChunk',
        'seed',
        'formats',
        'loops',
        'pingPong',
        'saveToFolder',
        'model',
      ];
      const settings = fc.oneof(
        fc.dictionary(fc.constantFrom(...keys), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 4 }).map((d) => JSON.stringify(d)),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.string({ maxLength: 200 }),
        fc.constantFrom('{', '[]', 'null', '1e999', '{"width": 1e999}', '{"__proto__": {"width": 64}}', '{"sigmas": []}', `{"sigmas": [${'1,'.repeat(5000)}0]}`),
      );
      // A broken image after the settings: valid settings are answered 415, so no job ever runs here.
      await fc.assert(
        fc.asyncProperty(settings, async (s) => {
          const r = await postJob(server.url, jobForm(s, Buffer.from('not an image')));
          expect([400, 413, 415]).toContain(r.status);
          expectClientError(r, s.slice(0, 80));
        }),
        { numRuns: 150 },
      );
    });

    it('POST /api/jobs: broken, repeated and foreign bodies are 4xx', async () => {
      const good = jobForm(small);
      const bodies: [string, string, Uint8Array | string][] = [
        ['no body', 'multipart/form-data; boundary=x', ''],
        ['no boundary', 'multipart/form-data', good.body],
        ['wrong boundary', 'multipart/form-data; boundary=other', good.body],
        ['json', 'application/json', JSON.stringify(small)],
        ['urlencoded', 'application/x-www-form-urlencoded', 'settings=%7B%7D'],
        ['text', 'text/plain', 'hello'],
        [
          'settings twice',
          good.contentType,
          multipart([
            { name: 'image', filename: 'a.png', data: png },
            { name: 'settings', data: '{}' },
            { name: 'settings', data: '{"steps": 9000}' },
          ]).body,
        ],
        [
          'two images',
          good.contentType,
          multipart([
            { name: 'image', filename: 'a.png', data: png },
            { name: 'image', filename: 'b.png', data: png },
          ]).body,
        ],
        ['image under another name', good.contentType, multipart([{ name: 'picture', filename: 'a.png', data: png }]).body],
        [
          'extra field',
          good.contentType,
          multipart([
            { name: 'image', filename: 'a.png', data: png },
            { name: 'evil', data: 'x' },
          ]).body,
        ],
        ['image as a plain field', good.contentType, multipart([{ name: 'image', data: 'abc' }]).body],
        [
          'huge field',
          good.contentType,
          multipart([
            { name: 'image', filename: 'a.png', data: png },
            { name: 'settings', data: 'x'.repeat(100_000) },
          ]).body,
        ],
        ['many parts', good.contentType, multipart(Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, data: 'x' }))).body],
        [
          'prototype keys',
          good.contentType,
          multipart([
            { name: 'image', filename: 'a.png', data: png },
            { name: '__proto__[polluted]', data: '1' },
            { name: 'settings[__proto__][width]', data: '64' },
          ]).body,
        ],
        [
          'svg',
          good.contentType,
          multipart([{ name: 'image', filename: 'a.svg', data: '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><image href="file:///etc/passwd"/></svg>' }]).body,
        ],
      ];
      for (const [what, type, body] of bodies) expectClientError(await send(server.url, 'POST', 'api/jobs', { headers: { ...auth, 'content-type': type }, body }), what);
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), fc.nat(good.body.length), async (noise, cut) => {
          const body = Buffer.concat([good.body.subarray(0, cut), noise]);
          const r = await send(server.url, 'POST', 'api/jobs', { headers: { ...auth, 'content-type': good.contentType }, body });
          // Rarely the noise leaves a whole valid form: then the job is accepted and cancelled at once.
          if (r.status === 202) return void (await send(server.url, 'DELETE', `api/jobs/${(JSON.parse(r.text) as { id: string }).id}`, { headers: auth }));
          expectClientError(r, `cut ${cut} + ${noise.length} bytes`);
        }),
        { numRuns: 80 },
      );
    });

    it('POST /api/jobs/:id/rerun: bodies of every wrong type are 4xx', async () => {
      const bodies = fc.oneof(
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ settings: v })),
        fc.dictionary(fc.constantFrom('steps', 'sigmas', 'formats', 'model', 'seed', 'pingPong'), fc.jsonValue({ maxDepth: 1 }), { minKeys: 1 }).map((d) => JSON.stringify({ settings: d })),
        fc.string({ maxLength: 100 }),
      );
      await fc.assert(
        fc.asyncProperty(bodies, fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'), async (body, type) => {
          const r = await send(server.url, 'POST', `api/jobs/${jobId}/rerun`, { headers: { ...auth, 'content-type': type }, body });
          // A body that happens to be valid settings re-runs the tiny job; cancel it so the queue stays short.
          if (r.status === 202) return void (await send(server.url, 'DELETE', `api/jobs/${(JSON.parse(r.text) as { id: string }).id}`, { headers: auth }));
          expectClientError(r, body.slice(0, 80));
        }),
        { numRuns: 80 },
      );
      expectClientError(await send(server.url, 'POST', `api/jobs/${jobId}/rerun`, { headers: { ...auth, 'content-type': 'application/json' }, body: 'x'.repeat(100_000) }), 'big body');
    });

    it('POST /api/plan: bodies of every wrong type, size, type and encoding are 4xx that say what to send', async () => {
      const json = { 'content-type': 'application/json' };
      const plan = (headers: Record<string, string>, body?: string | Uint8Array) => send(server.url, 'POST', 'api/plan', { headers: { ...auth, ...headers }, body });
      const notObject = /^bad request: the body must be a JSON object like \{"settings": \{\.\.\.\}\}$/;
      const settingsNotObject = /^bad request: "settings" must be a JSON object, like \{"settings": \{"steps": 25\}\}$/;
      const notJson = /^send the settings as JSON \(content-type: application\/json\), like \{"settings": \{\.\.\.\}\}$/;
      const cases: [string, Record<string, string>, string | Uint8Array | undefined, number, RegExp][] = [
        ['null', json, 'null', 400, notObject],
        ['a number', json, '5', 400, notObject],
        ['a number past float range', json, '1e999', 400, notObject],
        ['a NaN-ish string', json, '"NaN"', 400, notObject],
        ['true', json, 'true', 400, notObject],
        ['an array', json, '[{"settings": {}}]', 400, notObject],
        ['settings null', json, '{"settings": null}', 400, settingsNotObject],
        ['settings a list', json, '{"settings": [1, 2]}', 400, settingsNotObject],
        ['settings as JSON text', json, '{"settings": "{\\"steps\\": 4}"}', 400, settingsNotObject],
        ['settings nested 5000 deep', json, `{"settings": ${'['.repeat(5000)}${']'.repeat(5000)}}`, 400, settingsNotObject],
        [
          'huge numbers',
          json,
          '{"settings": {"width": 1e999, "steps": -1e308, "seed": 1e400}}',
          400,
          /^bad settings: (?=.*width must be a multiple of 64, 64–2048)(?=.*steps must be a whole number, 1–200)(?=.*seed must be 0–)/,
        ],
        ['NaN-ish strings', json, '{"settings": {"width": "NaN", "frames": "Infinity", "fps": "0x10"}}', 400, /^bad settings: (?=.*width must)(?=.*frames must)(?=.*fps must)/],
        ['nested junk', json, JSON.stringify({ settings: { framing: { mode: { $gt: '' } }, formats: [[['mp4']]] } }), 400, /^bad settings: (?=.*framing\.mode)(?=.*formats)/],
        ['a model path', json, '{"settings": {"model": "../../../etc/passwd"}}', 400, /^bad settings: model "\.\.\/\.\.\/\.\.\/etc\/passwd" is not installed; installed: /],
        // JSON.parse keeps the last of repeated keys: the plan is of what the job would run with.
        ['repeated keys', json, '{"settings": {"steps": 4}, "settings": {"steps": 9999}}', 400, /^bad settings: steps must be 1–200$/],
        ['a video too long to encode', json, JSON.stringify({ settings: { ...small, frames: 128, loops: 10 } }), 400, /^bad settings: the video would be 1280 frames/],
        ['broken JSON', json, '{"settings": {"steps": 4', 400, /^the body is not valid JSON \(.+\); send a JSON object like/],
        ['1 MB', json, JSON.stringify({ settings: { model: 'x'.repeat(2 ** 20) } }), 413, /^the body is 1025 kB, over the 64 kB a JSON request may be; send only the settings$/],
        ['UTF-16 that is not', { 'content-type': 'application/json; charset=utf-16' }, '{"settings": {}}', 400, /^the body is not valid JSON/],
        ['latin1', { 'content-type': 'application/json; charset=latin1' }, '{"settings": {}}', 415, /^unsupported charset "LATIN1"; send the JSON as UTF-8$/],
        [
          'gzip that is not',
          { ...json, 'content-encoding': 'gzip' },
          '{"settings": {}}',
          400,
          /^the body could not be decompressed as its Content-Encoding says \(incorrect header check\); send it uncompressed$/,
        ],
        ['an unknown encoding', { ...json, 'content-encoding': 'compress' }, '{"settings": {}}', 415, /^unsupported content encoding "compress"; send the body uncompressed, or with gzip or deflate$/],
        // A body the JSON parser does not read would be planned as the defaults: refused instead.
        ['text', { 'content-type': 'text/plain' }, '{"settings": {"steps": 4}}', 415, notJson],
        ['a form', { 'content-type': 'application/x-www-form-urlencoded' }, 'settings=%7B%7D', 415, notJson],
        ['multipart', { 'content-type': 'multipart/form-data; boundary=x' }, '--x\r\nContent-Disposition: form-data; name="settings"\r\n\r\n{}\r\n--x--\r\n', 415, notJson],
        ['no content type', {}, '{"settings": {}}', 415, notJson],
        ['no body', {}, undefined, 415, notJson],
      ];
      for (const [what, headers, body, status, message] of cases) {
        const r = await plan(headers, body);
        expectClientError(r, what);
        expect(r.status, `${what}: ${r.text.slice(0, 200)}`).toBe(status);
        expect((JSON.parse(r.text) as { error: string }).error, what).toMatch(message);
      }
      // Generated bodies: a plan (200, or the planner's refusal in words) or a 4xx that says why.
      const keys = ['width', 'height', 'frames', 'steps', 'sigmas', 'decodeChunk', 'extend', 'interpolate', 'variations', 'formats', 'loops', 'pingPong', 'model', 'framing', 'seed'];
      const bodies = fc.oneof(
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ settings: v })),
        fc.dictionary(fc.constantFrom(...keys), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 4 }).map((d) => JSON.stringify({ settings: d })),
        fc.string({ maxLength: 100 }),
      );
      await fc.assert(
        fc.asyncProperty(bodies, async (body) => {
          const r = await plan(json, body);
          if (r.status === 200) return void expect(Object.keys(JSON.parse(r.text) as object)).toEqual([expect.stringMatching(/^(plan|refused)$/)]);
          // Valid settings while the worker reloads its model (a job cancelled mid-step above restarts it): the planner's own answer.
          if (r.status === 503) return void expect(JSON.parse(r.text).error).toBe('the plan is made once the model has loaded on a worker; ask again shortly');
          expectClientError(r, body.slice(0, 80));
        }),
        { numRuns: 120 },
      );
      // And the plan itself, for the same settings a job would take.
      const ok = await waitFor(async () => {
        const r = await plan(json, JSON.stringify({ settings: small }));
        return r.status === 503 ? undefined : r;
      });
      expect(ok.status, ok.text).toBe(200);
      expect(JSON.parse(ok.text)).toMatchObject({ plan: { provider: 'cpu', width: 128, height: 64, frames: 3 } });
    });

    it('POST /api/jobs/:id/continue: JSON only, and bodies of every wrong type are 4xx', async () => {
      const url = `api/jobs/${jobId}/continue`;
      for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const r = await send(server.url, 'POST', url, { headers: { ...auth, ...(type ? { 'content-type': type } : {}) }, body: '{}' });
        expect(r.status, String(type)).toBe(415);
        expect(JSON.parse(r.text).error).toMatch(/^send it as JSON \(content-type: application\/json\), \{\} for the same settings/);
      }
      const json = { ...auth, 'content-type': 'application/json' };
      for (const [body, message] of [
        ['null', /^bad request: the body must be a JSON object/],
        ['[]', /^bad request: the body must be a JSON object/],
        ['{"settings": "steps=4"}', /^bad request: "settings" must be a JSON object/],
        ['{"settings": {"seed": -1}}', /^bad settings: seed must be 0–/],
        ['{"settings": {"extend": 9}}', /^bad settings: extend /],
        ['{"settings": ', /^the body is not valid JSON/],
        [JSON.stringify({ settings: { model: 'x'.repeat(2 ** 20) } }), /^the body is 1025 kB, over the 64 kB/],
      ] as const) {
        const r = await send(server.url, 'POST', url, { headers: json, body });
        expectClientError(r, body.slice(0, 60));
        expect(JSON.parse(r.text).error, body.slice(0, 60)).toMatch(message);
      }
      const bodies = fc.oneof(
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ settings: v })),
        fc
          .dictionary(fc.constantFrom('steps', 'frames', 'extend', 'interpolate', 'variations', 'seed', 'width', 'model'), fc.jsonValue({ maxDepth: 1 }), { minKeys: 1 })
          .map((d) => JSON.stringify({ settings: d })),
        fc.string({ maxLength: 100 }),
      );
      await fc.assert(
        fc.asyncProperty(bodies, async (body) => {
          const r = await send(server.url, 'POST', url, { headers: json, body });
          // A body that happens to be valid settings continues the tiny job; cancel it so the queue stays short.
          if (r.status === 202) {
            const made = JSON.parse(r.text) as { id: string; ids?: string[] };
            for (const id of made.ids ?? [made.id]) await send(server.url, 'DELETE', `api/jobs/${id}`, { headers: auth });
            return;
          }
          expectClientError(r, body.slice(0, 80));
        }),
        { numRuns: 80 },
      );
    });

    it('malformed HTTP is refused by the parser and the process lives', async () => {
      const raw = [
        'GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
        'GET /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
        `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        'GET /api/health HTTP/1.1\r\nHost: x\r\nX: \x00\x01\r\n\r\n',
        '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
        'POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n',
      ];
      for (const bytes of raw) {
        const answer = await new Promise<string>((ok) => {
          const s = tcpConnect({ host: '127.0.0.1', port: Number(new URL(server.url).port) }, () => s.end(bytes, 'latin1'));
          let got = '';
          s.on('data', (d) => (got += d.toString('latin1')));
          s.on('close', () => ok(got));
          s.on('error', () => ok(got));
          s.setTimeout(3000, () => s.destroy());
        });
        expect(answer.startsWith('HTTP/1.1 5'), `${bytes.slice(0, 40)} → ${answer.slice(0, 80)}`).toBe(false);
      }
      expect(server.alive()).toBe(true);
    });
  });

  describe('socket.io', () => {
    it('the handshake refuses every wrong shape of auth and every wrong token', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.jsonValue({ maxDepth: 2 }).map((v) => `40${JSON.stringify({ token: v })}`),
            fc.jsonValue({ maxDepth: 2 }).map((v) => `40${JSON.stringify(v)}`),
            fc.string({ maxLength: 60 }).map((s) => `40${s}`),
            fc.string({ maxLength: 60 }).map((s) => `4${s}`),
          ),
          fc.option(fc.constantFrom('svd_token=%E0%A4%A', 'svd_token=', 'svd_token=%', `svd_token=${TOKEN}x`, 'svd_token'), { nil: undefined }),
          async (packet, cookie) => {
            const reply = await rawSocket(server.url, [packet], { from: freshAddress(), headers: cookie ? { cookie } : {} });
            expect(refusedOrClosed(reply), `${packet.slice(0, 60)} → ${reply.slice(0, 100)}`).toBe(true);
          },
        ),
        { numRuns: 150 },
      );
      expect(server.alive()).toBe(true);
    });

    it('every event with arguments of every type leaves the connection and the process sound', async () => {
      const socket = await connectIo(server.url);
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom('watch', 'unwatch', 'job', 'history', 'preview', 'error', 'x'.repeat(300)),
            fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 4 }),
            fc.boolean(),
            async (event, args, withAck) => {
              if (!withAck) return void socket.emit(event, ...args);
              const reply = (await socket
                .timeout(500)
                .emitWithAck(event, ...args)
                .catch(() => 'no reply')) as { error?: string } | string;
              const goodWatch = event === 'watch' && args.length === 1 && args[0] === jobId;
              if (event === 'watch' || event === 'unwatch') {
                if (!goodWatch && !(event === 'unwatch' && args.length === 1 && typeof args[0] === 'string' && /^[a-z0-9]{16}$/.test(args[0])))
                  expect(reply, JSON.stringify(args).slice(0, 80)).toMatchObject({ error: expect.any(String) });
              } else expect(reply).toBe('no reply');
            },
          ),
          { numRuns: 80 },
        );
        expect(socket.connected).toBe(true);
        expect(await socket.emitWithAck('watch', jobId)).toMatchObject({ job: { id: jobId } });
      } finally {
        socket.close();
      }
    });

    it('malformed socket.io packets close only that connection', async () => {
      for (const packet of [
        '42[',
        '42{"a":1}',
        '42["watch","a",5]',
        '421["watch"]',
        '42[1,2]',
        '4x',
        '9',
        '',
        '43["x"]',
        '451-["watch",{"_placeholder":true,"num":0}]',
        '42[{"toString":"x"}]',
        '42["error",{}]',
        '42["disconnect"]',
        '42["newListener","watch"]',
        '42["__proto__"]',
        '42["constructor"]',
      ]) {
        const reply = await rawSocket(server.url, [`40{"token":"${TOKEN}"}`, packet]);
        expect(reply, packet).not.toMatch(/HTTP 5/);
      }
      expect(server.alive()).toBe(true);
    });
  });

  it("a poster whose video was removed behind the server's back is a 404 with a plain message", async () => {
    const r = await send(server.url, 'GET', `api/jobs/${jobId}/poster.jpg`, { headers: auth });
    expect(r.status).toBe(200);
    rmSync(join(out, jobId, 'poster.jpg'));
    rmSync(join(out, jobId, 'video.mp4'));
    const gone = await send(server.url, 'GET', `api/jobs/${jobId}/poster.jpg`, { headers: auth });
    expectClientError(gone, 'poster of a removed video');
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.text).error).toMatch(/is no longer on the server; run the job again/);
  });

  it('after all of it: the same process serves, runs jobs, and never reached its last resort', async () => {
    expect(server.alive()).toBe(true);
    const r = await postJob(server.url, jobForm(small));
    expect(r.status).toBe(202);
    const id = (JSON.parse(r.text) as { id: string }).id;
    let status = '';
    for (let i = 0; i < 600 && !['done', 'failed', 'cancelled'].includes(status); i++) {
      await new Promise((ok) => setTimeout(ok, 100));
      status = (JSON.parse((await send(server.url, 'GET', `api/jobs/${id}`, { headers: auth })).text) as { status: string }).status;
    }
    expect(status).toBe('done');
    expect(server.output()).not.toContain(LAST_RESORT_PREFIX);
    expect(server.output()).not.toContain('request failed:');
  });
});

describe('limits that headers cannot lift', () => {
  const quiet = () => {};
  const badJob = () => jobForm({ width: 100 });

  it('the job rate limit ignores X-Forwarded-For unless --trust-proxy is given', async () => {
    const plain = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu', jobRateLimit: 5 }, quiet);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await postJob(plain.url, badJob(), { 'x-forwarded-for': `203.0.113.${i}` })).status);
      expect(statuses).toEqual([400, 400, 400, 400, 400, 429, 429, 429]);
    } finally {
      await plain.close();
    }
    const proxied = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu', jobRateLimit: 5, trustProxy: true }, quiet);
    try {
      const each: number[] = [];
      for (let i = 0; i < 8; i++) each.push((await postJob(proxied.url, badJob(), { 'x-forwarded-for': `203.0.113.${i}` })).status);
      expect(each).toEqual(Array(8).fill(400));
      const same: number[] = [];
      for (let i = 0; i < 7; i++) same.push((await postJob(proxied.url, badJob(), { 'x-forwarded-for': `spoofed, 198.51.100.7` })).status);
      expect(same).toEqual([400, 400, 400, 400, 400, 429, 429]);
    } finally {
      await proxied.close();
    }
  });

  it('the client address: the peer, or the right-most X-Forwarded-For entry of a trusted hop', () => {
    expect(clientAddress('203.0.113.9', '1.2.3.4', 'none')).toBe('203.0.113.9');
    expect(clientAddress('10.0.0.2', '1.2.3.4, 5.6.7.8', 'proxy')).toBe('5.6.7.8');
    // The tunnel client connects from loopback; anyone else's header is theirs to invent.
    expect(clientAddress('127.0.0.1', ['1.2.3.4', '5.6.7.8'], 'tunnel')).toBe('5.6.7.8');
    expect(clientAddress('::ffff:127.0.0.1', '2001:db8::1', 'tunnel')).toBe('2001:db8::1');
    expect(clientAddress('198.51.100.1', '5.6.7.8', 'tunnel')).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', 'not-an-address', 'tunnel')).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', undefined, 'proxy')).toBe('127.0.0.1');
  });

  it('wrong tokens are throttled per client, on REST and on socket.io alike', async () => {
    const token = 'throttle-test-token-42';
    const server = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu', token }, quiet);
    try {
      const from = '127.0.0.7';
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await send(server.url, 'GET', 'api/jobs', { headers: { authorization: `Bearer guess-${i}` }, from })).status);
      expect(statuses).toEqual(Array(10).fill(401));
      const blocked = await send(server.url, 'GET', 'api/jobs', { headers: { authorization: `Bearer ${token}` }, from });
      expect(blocked.status).toBe(429);
      expect(JSON.parse(blocked.text).error).toMatch(/too many wrong access tokens from your address; wait \d+ s/);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      expect(await rawSocket(server.url, [`40{"token":"${token}"}`], { from })).toMatch(/^44\{"message":"too many wrong access tokens/);
      // Headers do not make a new client, and another client is not locked out.
      expect((await send(server.url, 'GET', 'api/jobs', { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '192.0.2.1' }, from })).status).toBe(429);
      expect((await send(server.url, 'GET', 'api/jobs', { headers: { authorization: `Bearer ${token}` }, from: '127.0.0.8' })).status).toBe(200);
      // A request without any token is no guess: it does not count.
      for (let i = 0; i < 15; i++) expect((await send(server.url, 'GET', 'api/jobs', { from: '127.0.0.9' })).status).toBe(401);
      expect((await send(server.url, 'GET', 'api/jobs', { headers: { authorization: `Bearer ${token}` }, from: '127.0.0.9' })).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('the throttle forgets a client when its window ends, and holds a bounded number of clients', () => {
    const t = new FailedLoginThrottle({ limit: 3, windowMs: 1000, maxClients: 100 });
    for (let i = 0; i < 3; i++) t.fail('a', 0);
    expect(t.blockedFor('a', 10)).toBe(990);
    expect(t.blockedFor('a', 1000)).toBe(0);
    t.fail('a', 1000);
    expect(t.blockedFor('a', 1001)).toBe(0);
    for (let i = 0; i < 10_000; i++) t.fail(`c${i}`, 2000);
    expect((t as unknown as { clients: Map<string, unknown> }).clients.size).toBeLessThanOrEqual(100);
  });
});

describe("the tunnel server's answers", () => {
  it('a hostile answer to "new tunnel" is refused before anything connects, and retried', async () => {
    const answers = [
      '{"id":"a","url":"javascript:alert(1)","port":80}',
      '{"id":"a","url":"http://x.example/","port":99999}',
      '{"id":"a","url":"http://x.example/","port":1234,"ip":"evil.example; rm -rf /"}',
      'not json',
    ];
    let asked = 0;
    const http = createHttpServer((_req, res) => res.end(answers[asked++ % answers.length]));
    await new Promise<void>((ok) => http.listen(0, '127.0.0.1', () => ok()));
    const tunnel = new LocalTunnel({ localPort: 1, host: `http://127.0.0.1:${(http.address() as { port: number }).port}`, maxBackoffMs: 20 });
    const reasons: string[] = [];
    tunnel.on('ready', () => reasons.push('READY'));
    tunnel.on('down', (r) => reasons.push(r));
    tunnel.start();
    try {
      for (let i = 0; i < 200 && reasons.length < answers.length; i++) await new Promise((ok) => setTimeout(ok, 25));
    } finally {
      tunnel.close();
      http.close();
    }
    expect(reasons.slice(0, 4)).toEqual([
      expect.stringMatching(/^the tunnel server's answer is not a new tunnel \(url: /),
      expect.stringMatching(/\(port: /),
      expect.stringMatching(/\(ip: /),
      expect.stringMatching(/\(answer: /),
    ]);
  });
});

describe('a shared link (issue 21): each browser its own jobs, and no riding on them from another page', () => {
  const token = 'shared-link-token-0123';
  const quiet = () => {};
  const ALICE = 'aliceAliceAlice0001';
  const BOB = 'bobBobBobBobBob0002';
  /** A browser's cookie jar on this server: its client id and the token cookie. */
  const jar = (id: string) => ({ cookie: `svd_client=${id}; svd_token=${token}` });
  const ghost = 'zzzzzzzzzzzzzzzz';
  let server: RunningServer;
  let out: string;
  let saveDir: string;
  let origin: string;

  const job = async (id: string, headers: Record<string, string>) => JSON.parse((await send(server.url, 'GET', `api/jobs/${id}`, { headers })).text) as Record<string, any>;
  const ended = (id: string, headers: Record<string, string>) =>
    waitFor(async () => {
      const j = await job(id, headers);
      return ['done', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
    });
  const ids = async (headers: Record<string, string>, query = '') => (JSON.parse((await send(server.url, 'GET', `api/jobs${query}`, { headers })).text) as { id: string }[]).map((j) => j.id);
  const submitAs = async (headers: Record<string, string>, settings: object = small) => {
    const r = await postJob(server.url, jobForm(settings), headers);
    expect(r.status, r.text).toBe(202);
    return (JSON.parse(r.text) as { id: string }).id;
  };
  const socketAs = (headers: Record<string, string>) =>
    new Promise<Socket>((ok, fail) => {
      const socket = ioClient(server.url, { transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: headers });
      socket.once('connect', () => ok(socket));
      socket.once('connect_error', fail);
    });

  beforeAll(async () => {
    out = tempDir('svd-shared-');
    saveDir = tempDir('svd-shared-save-');
    server = await startServer({ port: 0, outputDir: out, saveDir, provider: 'cpu', token, jobRateLimit: 1000 }, quiet);
    origin = server.url.replace(/\/$/, '');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a browser gets a random client id in an httpOnly, SameSite cookie on first contact', async () => {
    const first = await send(server.url, 'GET', '');
    const set = String(first.headers['set-cookie']);
    expect(set).toMatch(/^svd_client=[\w-]{24}; /);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Lax/);
    // A browser that has one keeps it.
    expect((await send(server.url, 'GET', '', { headers: jar(ALICE) })).headers['set-cookie']).toBeUndefined();
  });

  it("two cookie jars: neither sees nor controls the other's jobs, and every route answers alike", async () => {
    const a = await submitAs(jar(ALICE));
    await ended(a, jar(ALICE));
    const alice = await socketAs(jar(ALICE));
    const bob = await socketAs(jar(BOB));
    const heard: Record<string, string[]> = { alice: [], bob: [] };
    alice.on('history', (e) => heard.alice!.push(e.id));
    bob.on('history', (e) => heard.bob!.push(e.id));
    try {
      expect(await ids(jar(ALICE))).toContain(a);
      expect(await ids(jar(BOB))).not.toContain(a);
      // The same answer as for a job that does not exist, on every route.
      const routes = (id: string): [string, string, Record<string, string>?, string?][] => [
        ['GET', `api/jobs/${id}`],
        ['GET', `api/jobs/${id}/input.png`],
        ['GET', `api/jobs/${id}/video.mp4`],
        ['GET', `api/jobs/${id}/poster.jpg`],
        ['DELETE', `api/jobs/${id}`],
        ['DELETE', `api/history/${id}`],
        ['POST', `api/jobs/${id}/rerun`, { 'content-type': 'application/json' }, '{}'],
        ['POST', `api/jobs/${id}/continue`, { 'content-type': 'application/json' }, '{}'],
      ];
      const theirs = routes(a);
      const none = routes(ghost);
      for (let i = 0; i < theirs.length; i++) {
        const [method, path, extra, body] = theirs[i]!;
        const r = await send(server.url, method, path, { headers: { ...jar(BOB), ...extra }, body });
        const missing = await send(server.url, none[i]![0], none[i]![1], { headers: { ...jar(BOB), ...extra }, body });
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.text.replace(a, 'ID'), `${method} ${path}`).toBe(missing.text.replace(ghost, 'ID'));
      }
      // Nothing was continued or re-run from Alice's job on Bob's word.
      expect(server.service.store.list().filter((j) => j.continues === a || j.rerunOf === a)).toEqual([]);
      expect(await bob.emitWithAck('watch', a)).toEqual({ error: 'no such job' });
      expect((await alice.emitWithAck('watch', a)).job?.id).toBe(a);
      // An API user sends its id as a header; one that sends none sees only jobs without an owner.
      expect(await ids({ authorization: `Bearer ${token}`, 'x-client-id': ALICE })).toContain(a);
      expect(await ids({ authorization: `Bearer ${token}` })).not.toContain(a);
      // Bob's job: only Bob hears of it, and Alice still has all of hers.
      const b = await submitAs(jar(BOB));
      await ended(b, jar(BOB));
      await waitFor(() => heard.bob!.includes(b));
      expect(heard.alice).not.toContain(b);
      expect(await ids(jar(ALICE))).not.toContain(b);
      expect((await send(server.url, 'GET', `api/jobs/${a}`, { headers: jar(ALICE) })).status).toBe(200);
      expect(await job(a, jar(ALICE))).not.toHaveProperty('owner');
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('others see only how many jobs are ahead of theirs, never which', async () => {
    const slow = { ...small, steps: 60 };
    const a1 = await submitAs(jar(ALICE), slow);
    const a2 = await submitAs(jar(ALICE), slow);
    const b = await submitAs(jar(BOB));
    try {
      const mine = await job(b, jar(BOB));
      expect(mine.position).toBeGreaterThanOrEqual(1);
      expect(mine.queueLength).toBeGreaterThanOrEqual(mine.position);
      const health = JSON.parse((await send(server.url, 'GET', 'api/health', { headers: jar(BOB) })).text) as { queue: { waiting: number; running: string | null } };
      expect(health.queue.running).not.toBe(a1);
      expect(health.queue.waiting).toBeGreaterThanOrEqual(1);
    } finally {
      for (const [id, who] of [
        [b, BOB],
        [a2, ALICE],
        [a1, ALICE],
      ] as const)
        await send(server.url, 'DELETE', `api/jobs/${id}`, { headers: jar(who) });
      for (const [id, who] of [
        [b, BOB],
        [a2, ALICE],
        [a1, ALICE],
      ] as const)
        await ended(id, jar(who));
    }
  });

  it('the owner deletes a job: its folder is gone, its copies in the save folder stay', async () => {
    const a = await submitAs(jar(ALICE), { ...small, saveToFolder: true });
    await ended(a, jar(ALICE));
    const saved = await waitFor(async () => {
      const j = await job(a, jar(ALICE));
      return j.saved?.status === 'saved' ? (j.saved.files as string[]) : undefined;
    });
    expect(existsSync(join(out, a))).toBe(true);
    const del = await send(server.url, 'DELETE', `api/history/${a}`, { headers: jar(ALICE) });
    expect(del.status, del.text).toBe(200);
    expect(existsSync(join(out, a))).toBe(false);
    expect((await send(server.url, 'GET', `api/jobs/${a}`, { headers: jar(ALICE) })).status).toBe(404);
    expect(await ids(jar(ALICE))).not.toContain(a);
    for (const f of saved) expect(readdirSync(saveDir)).toContain(f.split('/').pop());
    // A job that has not ended is cancelled first.
    const running = await submitAs(jar(ALICE), { ...small, steps: 60 });
    const busy = await send(server.url, 'DELETE', `api/history/${running}`, { headers: jar(ALICE) });
    expect(busy.status).toBe(409);
    expect(JSON.parse(busy.text).error).toMatch(/cancel it first/);
    await send(server.url, 'DELETE', `api/jobs/${running}`, { headers: jar(ALICE) });
    await ended(running, jar(ALICE));
    expect((await send(server.url, 'DELETE', `api/history/${running}`, { headers: jar(ALICE) })).status).toBe(200);
  });

  it("a page of another origin with the owner's cookies creates, reruns and cancels nothing, and gets no socket", async () => {
    const a = await submitAs(jar(ALICE), { ...small, steps: 60 });
    const before = await ids(jar(ALICE));
    for (const foreign of <Record<string, string>[]>[{ origin: 'https://evil.loca.lt' }, { origin: 'null' }, { 'sec-fetch-site': 'same-site' }, { origin, 'sec-fetch-site': 'cross-site' }]) {
      const headers: Record<string, string> = { ...jar(ALICE), ...foreign };
      const what = JSON.stringify(foreign);
      expect((await postJob(server.url, jobForm(small), headers)).status, what).toBe(403);
      expect((await send(server.url, 'POST', `api/jobs/${a}/rerun`, { headers: { ...headers, 'content-type': 'application/json' }, body: '{}' })).status, what).toBe(403);
      expect((await send(server.url, 'POST', `api/jobs/${a}/continue`, { headers: { ...headers, 'content-type': 'application/json' }, body: '{}' })).status, what).toBe(403);
      expect((await send(server.url, 'POST', 'api/plan', { headers: { ...headers, 'content-type': 'application/json' }, body: '{}' })).status, what).toBe(403);
      expect((await send(server.url, 'DELETE', `api/jobs/${a}`, { headers })).status, what).toBe(403);
      expect((await send(server.url, 'DELETE', `api/history/${a}`, { headers })).status, what).toBe(403);
      const handshake = await send(server.url, 'GET', 'socket.io/?EIO=4&transport=polling', { headers });
      expect(handshake.status, what).not.toBe(200);
      await expect(socketAs(headers), what).rejects.toThrow();
    }
    expect(await ids(jar(ALICE))).toEqual(before);
    expect((await job(a, jar(ALICE))).status).not.toBe('cancelled');
    // A no-cors POST can only send a form or text: a rerun and a continuation take JSON only.
    for (const route of ['rerun', 'continue']) {
      for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const r = await send(server.url, 'POST', `api/jobs/${a}/${route}`, { headers: { ...jar(ALICE), origin, ...(type ? { 'content-type': type } : {}) }, body: '' });
        expect(r.status, `${route} ${type}`).toBe(415);
      }
    }
    expect(await ids(jar(ALICE))).toEqual(before);
    // The page's own origin works.
    const same = await send(server.url, 'DELETE', `api/jobs/${a}`, { headers: { ...jar(ALICE), origin, 'sec-fetch-site': 'same-origin' } });
    expect(same.status, same.text).toBe(200);
    await ended(a, jar(ALICE));
    expect((await socketAs({ ...jar(ALICE), origin })).connected).toBe(true);
  });

  it('continue: only a finished video; queued, running, cancelled and failed jobs are a 409 that says so; two at once are two jobs', async () => {
    const cont = (id: string) => send(server.url, 'POST', `api/jobs/${id}/continue`, { headers: { ...jar(ALICE), 'content-type': 'application/json' }, body: '{}' });
    const refusal = async (id: string, status: string) => {
      const r = await cont(id);
      expect(r.status, r.text).toBe(409);
      expect(JSON.parse(r.text).error).toBe(`job ${id} is ${status}; only a finished video can be continued`);
    };
    const done = await submitAs(jar(ALICE));
    await ended(done, jar(ALICE));
    // Two at once (a double click, two tabs): each its own job, from the same last frame.
    const both = await Promise.all([cont(done), cont(done)]);
    expect(both.map((r) => r.status)).toEqual([202, 202]);
    const made = both.map((r) => (JSON.parse(r.text) as { id: string }).id);
    expect(new Set(made).size).toBe(2);
    const lastFrame = readFileSync(join(out, done, 'last-frame.png'));
    for (const id of made) {
      expect(await ended(id, jar(ALICE))).toMatchObject({ status: 'done', continues: done });
      expect(readFileSync(join(out, id, 'input.png')).equals(lastFrame)).toBe(true);
    }
    // Not finished yet: queued behind a running one, and running.
    const running = await submitAs(jar(ALICE), { ...small, steps: 60 });
    const queued = await submitAs(jar(ALICE), { ...small, steps: 60 });
    await waitFor(async () => (await job(running, jar(ALICE))).progress?.stage === 'sampling');
    await refusal(queued, 'queued');
    await refusal(running, 'running');
    await send(server.url, 'DELETE', `api/jobs/${queued}`, { headers: jar(ALICE) });
    expect((await ended(queued, jar(ALICE))).status).toBe('cancelled');
    await refusal(queued, 'cancelled');
    // Failed: its worker killed mid-job (the server restarts the worker).
    const health = JSON.parse((await send(server.url, 'GET', 'api/health', { headers: jar(ALICE) })).text) as { workers: { pid?: number }[] };
    process.kill(health.workers[0]!.pid!, 'SIGKILL');
    expect((await ended(running, jar(ALICE))).status).toBe('failed');
    await refusal(running, 'failed');
    expect(server.service.store.list().filter((j) => j.continues === queued || j.continues === running)).toEqual([]);
    // Finished, but its last frame is gone (a job from before continuing existed): a 410 that says what to do.
    rmSync(join(out, done, 'last-frame.png'));
    const gone = await cont(done);
    expect(gone.status).toBe(410);
    expect(JSON.parse(gone.text).error).toBe(`the last frame of job ${done} is not on the server (jobs made before continuing existed do not keep it); run the job again first`);
  });

  it('a tossed svd_token cookie beside the right one does not lock the owner out', async () => {
    const from = '127.0.0.77';
    const tossed = `svd_token=tossed-by-a-sibling; svd_client=${ALICE}; svd_token=${token}`;
    for (let i = 0; i < 15; i++) expect((await send(server.url, 'GET', 'api/jobs', { headers: { cookie: tossed }, from })).status).toBe(200);
    // Nor does a wrong or malformed ?token= that a page elsewhere adds to a request carrying the right cookie.
    for (const query of ['token=wrong', `token=${'x'.repeat(600)}`, 'token=a&token=b']) {
      for (let i = 0; i < 6; i++) expect((await send(server.url, 'GET', `api/jobs?${query}`, { headers: { cookie: tossed }, from })).status, query).toBe(200);
    }
    // Wrong guesses with no right token from the same address do lock it for others...
    for (let i = 0; i < 10; i++) expect((await send(server.url, 'GET', 'api/jobs', { headers: { authorization: `Bearer guess-${i}` }, from })).status).toBe(401);
    expect((await send(server.url, 'GET', 'api/jobs', { headers: { authorization: `Bearer ${token}`, cookie: 'svd_client=newcomerNewcomer0003' }, from })).status).toBe(429);
    // ...but not the browser that has shown the right token before.
    expect((await send(server.url, 'GET', 'api/jobs', { headers: { cookie: tossed }, from })).status).toBe(200);
  });

  it('history comes in pages, and its socket event carries the job that changed', async () => {
    const carol = jar('carolCarolCarol0004');
    const socket = await socketAs(carol);
    const events: { id: string; job?: { id: string; status: string } }[] = [];
    socket.on('history', (e) => events.push(e));
    try {
      const made: string[] = [];
      for (let i = 0; i < 3; i++) made.push(await submitAs(carol));
      for (const id of made) await ended(id, carol);
      const newest = [...made].reverse();
      expect(await ids(carol, '?limit=2')).toEqual(newest.slice(0, 2));
      expect(await ids(carol, `?limit=2&before=${newest[1]}`)).toEqual(newest.slice(2));
      expect((await send(server.url, 'GET', 'api/jobs?limit=0', { headers: carol })).status).toBe(400);
      expect((await send(server.url, 'GET', `api/jobs?before=${ghost}`, { headers: carol })).status).toBe(400);
      await waitFor(() => events.some((e) => e.id === made[2] && e.job?.status === 'done'));
      expect(events.every((e) => e.job === undefined || e.job.id === e.id)).toBe(true);
      // Only what the history shows (status, save): queued, running, done, save pending, saved; not every step.
      expect(events.filter((e) => e.id === made[0]).length).toBeLessThanOrEqual(5);
    } finally {
      socket.close();
    }
  });

  it('encodes are bounded: frames x loops x ping-pong is limited at submission', async () => {
    const r = await postJob(server.url, jobForm({ ...small, frames: 128, loops: 10, pingPong: true }), jar(ALICE));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).error).toMatch(/^bad settings: the video would be 2560 frames \(frames x loops x 2 for ping-pong\), over the 1024/);
    const big = await postJob(server.url, jobForm({ ...small, width: 2048, height: 2048, frames: 100, loops: 1 }), jar(ALICE));
    expect(big.status).toBe(400);
    expect(JSON.parse(big.text).error).toMatch(/GiB of frames at 2048x2048/);
  });

  it('an upload is kept at the size the model can use', async () => {
    const photo = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: { r: 200, g: 120, b: 40 } } })
      .jpeg()
      .toBuffer();
    const r = await postJob(server.url, jobForm({ ...small, steps: 1 }, photo, 'photo.jpg'), jar(ALICE));
    expect(r.status, r.text).toBe(202);
    const id = (JSON.parse(r.text) as { id: string }).id;
    const meta = await sharp(join(out, id, 'input.png')).metadata();
    expect([meta.width, meta.height]).toEqual([2731, 2048]);
    await ended(id, jar(ALICE));
  });
});

describe('cookies over HTTPS, client ids and slow bodies (issue 21)', () => {
  const quiet = () => {};

  it('over HTTPS the cookies are host-only (__Host-) and only those are believed', async () => {
    const token = 'https-cookie-token-01';
    const server = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu', token, trustProxy: true }, quiet);
    try {
      const https = { 'x-forwarded-proto': 'https' };
      const first = await send(server.url, 'GET', `api/health?token=${token}`, { headers: https });
      const cookies = first.headers['set-cookie'] as string[];
      expect(cookies).toContainEqual(expect.stringMatching(/^__Host-svd_client=[\w-]{24}; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/));
      expect(cookies).toContainEqual(expect.stringMatching(/^__Host-svd_token=https-cookie-token-01; Max-Age=\d+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/));
      const r = await postJob(server.url, jobForm({ ...small, steps: 1 }), { ...https, cookie: `__Host-svd_client=ownerOverHttps00001; __Host-svd_token=${token}` });
      expect(r.status, r.text).toBe(202);
      const id = (JSON.parse(r.text) as { id: string }).id;
      // A plain svd_client (which a sibling domain could set) is not the owner over HTTPS.
      const tossed = await send(server.url, 'GET', `api/jobs/${id}`, { headers: { ...https, cookie: `svd_client=ownerOverHttps00001; __Host-svd_token=${token}` } });
      expect(tossed.status).toBe(404);
      expect((await send(server.url, 'GET', `api/jobs/${id}`, { headers: { ...https, cookie: `__Host-svd_client=ownerOverHttps00001; __Host-svd_token=${token}` } })).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('a malformed x-client-id is a 400, not someone else', async () => {
    const server = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu' }, quiet);
    try {
      for (const id of ['short', 'x'.repeat(65), 'has spaces in it here', 'ünïcödé-ünïcödé-01']) {
        const r = await send(server.url, 'GET', 'api/jobs', { headers: { 'x-client-id': encodeURIComponent(id) === id ? id : 'bad/slash/in/the/id' } });
        expect(r.status, id).toBe(400);
        expectClientError(r, id);
      }
    } finally {
      await server.close();
    }
  });

  it('a request body that trickles in is cut off', async () => {
    const server = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu', requestTimeoutMs: 1500 }, quiet);
    try {
      const { port } = new URL(server.url);
      const ended = await new Promise<{ ms: number; reply: string }>((ok) => {
        const started = Date.now();
        const socket = tcpConnect(Number(port), '127.0.0.1', () => {
          socket.write(`POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n`);
          const drip = setInterval(() => socket.write('a'), 200);
          let reply = '';
          socket.on('data', (d) => (reply += d.toString()));
          socket.on('close', () => {
            clearInterval(drip);
            ok({ ms: Date.now() - started, reply });
          });
          socket.on('error', () => {});
        });
      });
      expect(ended.ms).toBeLessThan(15_000);
      expect(ended.reply).toMatch(/^HTTP\/1.1 408/);
    } finally {
      await server.close();
    }
  });
});

describe('what the job folders may hold (issue 21)', () => {
  const quiet = () => {};
  const headers = { 'x-client-id': 'retentionClient0001' };
  const endOf = (url: string, id: string) =>
    waitFor(async () => {
      const j = JSON.parse((await send(url, 'GET', `api/jobs/${id}`, { headers })).text) as { status: string };
      return ['done', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
    });

  it('inputs count toward --job-storage: a job beyond it is refused with a plain 507 until old ones are deleted', async () => {
    const out = tempDir('svd-storage-');
    // Room for about two inputs (each upload is kept twice: the original and the working copy).
    const server = await startServer({ port: 0, outputDir: out, provider: 'cpu', jobStorage: (png.length * 2 * 2.5) / 1e9, jobRateLimit: 1000 }, quiet);
    try {
      const made: string[] = [];
      let refused: Reply | undefined;
      for (let i = 0; i < 5 && !refused; i++) {
        const r = await postJob(server.url, jobForm({ ...small, steps: 1 }), headers);
        if (r.status === 202) {
          made.push((JSON.parse(r.text) as { id: string }).id);
          // Cancelled at once: its input stays on disk all the same.
          await send(server.url, 'DELETE', `api/jobs/${made.at(-1)}`, { headers });
          await endOf(server.url, made.at(-1)!);
        } else refused = r;
      }
      expect(made.length).toBeGreaterThanOrEqual(1);
      expect(refused?.status).toBe(507);
      expect(JSON.parse(refused!.text).error).toMatch(/^the server keeps at most [\d.]+ GB of jobs and holds [\d.]+ GB; delete old jobs from your history/);
      for (const id of made) expect((await send(server.url, 'DELETE', `api/history/${id}`, { headers })).status).toBe(200);
      expect((await postJob(server.url, jobForm({ ...small, steps: 1 }), headers)).status).toBe(202);
    } finally {
      await server.close();
    }
  });

  it('--shared-history: every visitor sees and controls every job, as before jobs had owners', async () => {
    const server = await startServer({ port: 0, outputDir: tempDir('svd-shared-history-'), provider: 'cpu', sharedHistory: true }, quiet);
    try {
      const r = await postJob(server.url, jobForm({ ...small, steps: 1 }), { cookie: 'svd_client=phoneOfTheOwner0001' });
      const id = (JSON.parse(r.text) as { id: string }).id;
      const laptop = { cookie: 'svd_client=laptopOfTheOwner001' };
      expect((JSON.parse((await send(server.url, 'GET', 'api/jobs', { headers: laptop })).text) as { id: string }[]).map((j) => j.id)).toEqual([id]);
      expect((await send(server.url, 'GET', `api/jobs/${id}/input.png`, { headers: laptop })).status).toBe(200);
      await waitFor(async () => (JSON.parse((await send(server.url, 'GET', `api/jobs/${id}`, { headers: laptop })).text) as { status: string }).status === 'done');
      expect((await send(server.url, 'DELETE', `api/history/${id}`, { headers: laptop })).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('--keep-jobs keeps the newest ended jobs and deletes older ones with their folders', async () => {
    const out = tempDir('svd-keep-');
    const server = await startServer({ port: 0, outputDir: out, provider: 'cpu', keepJobs: 2, jobRateLimit: 1000 }, quiet);
    try {
      const made: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await postJob(server.url, jobForm({ ...small, steps: 1 }), headers);
        made.push((JSON.parse(r.text) as { id: string }).id);
        await endOf(server.url, made.at(-1)!);
      }
      const listed = (JSON.parse((await send(server.url, 'GET', 'api/jobs', { headers })).text) as { id: string }[]).map((j) => j.id);
      expect(listed).toEqual([made[2], made[1]]);
      expect(existsSync(join(out, made[0]!))).toBe(false);
      expect(existsSync(join(out, made[1]!))).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('encodes at once (issue 21)', () => {
  it('with one slot, the next job waits for the encode before it, and says so', async () => {
    const store = new JobStore(tempDir('svd-encodes-'));
    const finisher = new JobFinisher({ store, maxEncodes: 1, onSaved: () => {} });
    const [w, h, n] = [64, 64, 4];
    const jobs = [0, 1, 2].map(() => {
      const job = {
        id: store.newId(),
        status: 'running' as const,
        createdAt: new Date().toISOString(),
        settings: jobSettingsSchema.parse({ width: w, height: h, frames: n }),
        videos: {},
        inputName: 'input.png',
      };
      store.create(job, { [FRAMES_FILE]: new Uint8Array(w * h * 3 * n).fill(90) });
      return job;
    });
    const waited: string[] = [];
    const videoOf = (i: number) => join(store.root, jobs[i]!.id, 'video.mp4');
    const seenWhenFirstEnded: boolean[] = [];
    const runs = jobs.map((job) => finisher.encode(job, { frameCount: n, width: w, height: h, fps: 8, seed: 1 }, new AbortController().signal, () => waited.push(job.id)));
    await runs[0]!.then(() => seenWhenFirstEnded.push(existsSync(videoOf(1)), existsSync(videoOf(2))));
    await Promise.all(runs);
    expect(waited).toEqual([jobs[1]!.id, jobs[2]!.id]);
    expect(seenWhenFirstEnded).toEqual([false, false]);
    for (let i = 0; i < 3; i++) {
      expect(existsSync(videoOf(i))).toBe(true);
      expect(existsSync(join(store.root, jobs[i]!.id, FRAMES_FILE))).toBe(false);
    }
  });
});

describe('a server without a token answers only to its loopback names', () => {
  it('another Host (a DNS-rebinding page) is refused on the page, the API and the socket', async () => {
    const server = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu' }, () => {});
    try {
      const port = new URL(server.url).port;
      for (const path of ['', 'api/health', 'socket.io/?EIO=4&transport=polling']) {
        const r = await send(server.url, 'GET', path, { headers: { host: `rebind.example:${port}` } });
        expect(r.status, path).toBe(403);
        expect(JSON.parse(r.text).error ?? JSON.parse(r.text).message).toMatch(/answers only to localhost, 127.0.0.1/);
      }
      expect((await send(server.url, 'GET', 'api/health', { headers: { host: `localhost:${port}` } })).status).toBe(200);
    } finally {
      await server.close();
    }
    // Behind a reverse proxy of the user's (--trust-proxy) the Host is the proxy's public name.
    const proxied = await startServer({ port: 0, outputDir: tempDir(), provider: 'cpu', trustProxy: true }, () => {});
    try {
      expect((await send(proxied.url, 'GET', 'api/health', { headers: { host: 'studio.example.org' } })).status).toBe(200);
    } finally {
      await proxied.close();
    }
  });
});

describe('a second npm start on the same folder and port (issue 21)', () => {
  it("the lock names the holder's public link, and one left by a process that is gone is taken over", async () => {
    const dir = tempDir('svd-lock-');
    // Held by a live process other than this one (the test runner's parent).
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, url: 'http://127.0.0.1:7860/', link: 'https://x.loca.lt', startedAt: '2026-12-04T01:00:00.000Z' }));
    expect(() => lockOutputFolder(dir, 'http://127.0.0.1:7861/')).toThrow(FolderInUseError);
    expect(() => lockOutputFolder(dir, 'http://127.0.0.1:7861/')).toThrow(`(process ${process.ppid}, http://127.0.0.1:7860/, public link https://x.loca.lt, started 2026-12-04T01:00:00.000Z)`);
    // A process that has exited, and a lock file that is not one: both taken over.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((ok) => gone.once('exit', ok));
    for (const stale of [JSON.stringify({ pid: gone.pid, url: 'http://127.0.0.1:7860/', startedAt: 'x' }), 'half-writ']) {
      writeFileSync(join(dir, LOCK_FILE), stale);
      const lock = lockOutputFolder(dir, 'http://127.0.0.1:7861/');
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, url: 'http://127.0.0.1:7861/' });
      lock.release();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    }
  });

  it('exits 1 naming the running server, before touching anything, and the running job ends done', async () => {
    const out = tempDir('svd-twice-');
    const first = await startCliServer(['--output-dir', out]);
    try {
      const r = await postJob(first.url, jobForm({ ...small, steps: 150 }), {});
      expect(r.status).toBe(202);
      const id = (JSON.parse(r.text) as { id: string }).id;
      await waitFor(async () => (JSON.parse((await send(first.url, 'GET', `api/jobs/${id}`)).text) as { status: string }).status === 'running');
      const port = new URL(first.url).port;
      const again = (args: string[]) =>
        new Promise<{ code: number | null; output: string }>((ok) => {
          const proc = spawn(process.execPath, ['--import', 'tsx', 'cli/start.ts', '--model', FIXTURE_MODEL, '--provider', 'cpu', ...args], {
            cwd: join(import.meta.dirname, '..'),
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let output = '';
          proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
          proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
          proc.once('exit', (code) => ok({ code, output }));
        });
      const same = await again(['--output-dir', out, '--port', port]);
      expect(same.code, same.output).toBe(1);
      expect(same.output.trim()).toMatch(new RegExp(`^error: another svd-studio server \\(process ${first.proc.pid}, http://127.0.0.1:${port}/, started [^)]+\\) is using the output folder`));
      const portOnly = await again(['--output-dir', tempDir(), '--port', port]);
      expect(portOnly.code, portOnly.output).toBe(1);
      expect(portOnly.output.trim()).toMatch(new RegExp(`^error: port ${port} on 127.0.0.1 is already in use`));
      const done = await waitFor(async () => {
        const j = JSON.parse((await send(first.url, 'GET', `api/jobs/${id}`)).text) as { status: string; error?: string };
        return j.status !== 'running' && j.status !== 'queued' ? j : undefined;
      }, 120_000);
      expect(done).toMatchObject({ status: 'done' });
      expect(readFileSync(join(out, id, 'log.txt'), 'utf8')).not.toMatch(/interrupted/);
    } finally {
      await first.stop();
    }
    // Once the first has stopped, the folder is free again.
    const next = await startCliServer(['--output-dir', out]);
    await next.stop();
  });
});
