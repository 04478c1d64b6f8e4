// The downloader against a local server that behaves like the hub's file endpoints and serves
// the tiny fixture model.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ANIMATELCM_UNET_PATH, type AnimateLcmSource, assembleAnimateLcm, downloadAnimateLcm } from '../models/download/animatelcm.js';
import { downloadModel, selectSvdFiles, type DownloadProgress } from '../models/download/hub.js';
import { openModelDir } from '../models/model-dir.js';
import { DEMO_ANIMATELCM_MODEL } from '../models/paths.js';
import { float32Tensor, writeSafetensors } from '../models/safetensors.js';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

interface HubBehaviour {
  token?: string;
  /** Keep the weights in Xet storage, as the hub now does: their bytes come from a CAS as xorbs. */
  xet?: boolean;
  /** Close the connection after this many bytes, once per file (in Xet storage, the xorb holding that byte, twice: the library retries a xorb once itself). */
  cutAfter?: number;
  /** Serve wrong bytes for this file the first time. */
  corruptOnce?: string;
}

/** A second repository with one UNet state dict at its root, as wangfuyun/AnimateLCM-SVD-xt holds its distilled UNet. */
const LCM_REPO = 'acme/animatelcm-tiny';
const LCM_FILE = 'AnimateLCM-tiny.safetensors';
const LCM_BYTES = readFileSync(join(DEMO_ANIMATELCM_MODEL, ANIMATELCM_UNET_PATH));
const LCM_SOURCE: AnimateLcmSource = { base: 'acme/svd-tiny', repo: LCM_REPO, file: LCM_FILE, sha256: createHash('sha256').update(LCM_BYTES).digest('hex'), size: LCM_BYTES.length };

/** The file list comes in pages of this many entries, linked like the hub's (`Link: <...>; rel="next"`). */
const TREE_PAGE = 4;
/** The fake CAS cuts files into fixed chunks (the real ones are content-defined, about 64 KiB) and packs them into xorbs. */
const XET_CHUNK = 64 * 1024;
const CHUNKS_PER_XORB = 8;
const XORB_SPAN = XET_CHUNK * CHUNKS_PER_XORB;

/** A xorb as the CAS stores it: each chunk behind an 8-byte header (version 0, compressed length, scheme 0 = stored, length). */
function serializeXorb(data: Buffer): { bytes: Buffer; chunkStarts: number[] } {
  const parts: Buffer[] = [];
  const chunkStarts: number[] = [];
  let at = 0;
  for (let i = 0; i < data.length; i += XET_CHUNK) {
    const chunk = data.subarray(i, i + XET_CHUNK);
    const header = Buffer.alloc(8);
    header.writeUIntLE(chunk.length, 1, 3);
    header.writeUIntLE(chunk.length, 5, 3);
    chunkStarts.push(at);
    parts.push(header, chunk);
    at += header.length + chunk.length;
  }
  chunkStarts.push(at);
  return { bytes: Buffer.concat(parts), chunkStarts };
}

type HubRequest = { kind: 'resolve' | 'xet-info' | 'reconstruction' | 'xorb'; path: string; range?: string };

/** One download attempt of a file: its resolve request, or for a Xet file its reconstruction query. */
const attemptsOf = (requests: HubRequest[], path: string) => requests.filter((r) => r.path === path && (r.kind === 'resolve' || r.kind === 'reconstruction'));

function fakeHub(behaviour: HubBehaviour) {
  const files = walk(FIXTURE_MODEL).map((p) => relative(FIXTURE_MODEL, p));
  const cut = new Map<string, number>();
  const corrupted = new Set<string>();
  const requests: HubRequest[] = [];
  let treePages = 0;
  const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
  const isXet = (p: string) => !!behaviour.xet && p.endsWith('.safetensors');
  // Stand-ins for the Merkle hashes of a file and of a xorb.
  const xetHashOf = (p: string) => sha256(`file:${p}`);
  const xorbHashOf = (p: string, x: number) => sha256(`xorb:${p}:${x}`);
  const xetFiles = new Map(files.filter(isXet).map((p) => [xetHashOf(p), p]));
  const xorbs = new Map(
    files.filter(isXet).flatMap((p) => Array.from({ length: Math.ceil(statSync(join(FIXTURE_MODEL, p)).size / XORB_SPAN) }, (_, x) => [xorbHashOf(p, x), { path: p, x }] as const)),
  );
  /** A file's bytes as served from offset `from` on; wrong the first time for corruptOnce. */
  const served = (rel: string, from: number): Buffer => {
    const data = readFileSync(join(FIXTURE_MODEL, rel));
    if (behaviour.corruptOnce !== rel || corrupted.has(rel) || from > 1000) return data;
    corrupted.add(rel);
    return Buffer.from(data).fill(7, 1000, 2000);
  };
  const xetToken = 'xet_read_token';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const origin = `http://${req.headers.host}`;
    const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
    // The CAS takes the short-lived token from xet-read-token, not the hub's; xorb URLs are signed and need none.
    const reconstruction = /^\/cas\/v2\/reconstructions\/([0-9a-f]{64})$/.exec(url.pathname);
    if (reconstruction) {
      if (req.headers.authorization !== `Bearer ${xetToken}`) return void res.writeHead(401).end();
      const rel = xetFiles.get(reconstruction[1]!);
      if (!rel) return void res.writeHead(404).end();
      requests.push({ kind: 'reconstruction', path: rel, range: req.headers.range });
      const data = readFileSync(join(FIXTURE_MODEL, rel));
      const first = range ? Number(range[1]) : 0;
      const last = range?.[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      if (first >= data.length) return void res.writeHead(416).end();
      const firstChunk = Math.floor(first / XET_CHUNK);
      const lastChunk = Math.floor(last / XET_CHUNK);
      const terms = [];
      const fetchInfo: Record<string, unknown[]> = {};
      for (let x = Math.floor(firstChunk / CHUNKS_PER_XORB); x <= Math.floor(lastChunk / CHUNKS_PER_XORB); x++) {
        const start = Math.max(firstChunk - x * CHUNKS_PER_XORB, 0);
        const end = Math.min(lastChunk + 1 - x * CHUNKS_PER_XORB, CHUNKS_PER_XORB);
        const hash = xorbHashOf(rel, x);
        const { chunkStarts } = serializeXorb(data.subarray(x * XORB_SPAN, (x + 1) * XORB_SPAN));
        const unpacked = Math.min(data.length, x * XORB_SPAN + end * XET_CHUNK) - (x * XORB_SPAN + start * XET_CHUNK);
        terms.push({ hash, unpacked_length: unpacked, range: { start, end } });
        fetchInfo[hash] = [{ url: `${origin}/xorbs/default/${hash}`, ranges: [{ chunks: { start, end }, bytes: { start: chunkStarts[start]!, end: chunkStarts[end]! - 1 } }] }];
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ offset_into_first_range: first - firstChunk * XET_CHUNK, terms, xorbs: fetchInfo }));
      return;
    }
    const xorbPath = /^\/xorbs\/default\/([0-9a-f]{64})$/.exec(url.pathname);
    if (xorbPath) {
      const xorb = xorbs.get(xorbPath[1]!);
      if (!xorb) return void res.writeHead(404).end();
      requests.push({ kind: 'xorb', path: xorb.path, range: req.headers.range });
      const from = xorb.x * XORB_SPAN;
      const { bytes } = serializeXorb(served(xorb.path, from).subarray(from, from + XORB_SPAN));
      const a = range ? Number(range[1]) : 0;
      const b = range?.[2] ? Number(range[2]) : bytes.length - 1;
      const body = bytes.subarray(a, b + 1);
      res.writeHead(range ? 206 : 200, { 'content-length': body.length, ...(range ? { 'content-range': `bytes ${a}-${b}/${bytes.length}` } : {}) });
      const cuts = cut.get(xorb.path) ?? 0;
      if (behaviour.cutAfter && behaviour.cutAfter >= from && behaviour.cutAfter < from + XORB_SPAN && cuts < 2) {
        cut.set(xorb.path, cuts + 1);
        res.write(body.subarray(0, body.length >> 1), () => res.destroy());
        return;
      }
      res.end(body);
      return;
    }
    if (behaviour.token && req.headers.authorization !== `Bearer ${behaviour.token}`) {
      res.writeHead(401).end('{"error":"Access to model is restricted"}');
      return;
    }
    if (url.pathname === `/api/models/${LCM_REPO}/tree/main`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([{ type: 'file', oid: 'x', path: LCM_FILE, size: 134, lfs: { oid: LCM_SOURCE.sha256, size: LCM_BYTES.length, pointerSize: 134 } }]));
      return;
    }
    if (url.pathname === `/${LCM_REPO}/resolve/main/${LCM_FILE}`) {
      requests.push({ kind: 'resolve', path: LCM_FILE, range: req.headers.range });
      const start = range ? Number(range[1]) : 0;
      res.writeHead(range ? 206 : 200, { 'content-length': LCM_BYTES.length - start }).end(LCM_BYTES.subarray(start));
      return;
    }
    if (url.pathname === '/api/models/acme/svd-tiny/tree/main') {
      treePages++;
      const tree = files.map((p) => {
        const data = readFileSync(join(FIXTURE_MODEL, p));
        const big = p.endsWith('.safetensors');
        return {
          type: 'file',
          oid: createHash('sha1').update(data).digest('hex'),
          path: p,
          size: data.length,
          ...(big ? { lfs: { oid: sha256(data), size: data.length, pointerSize: 134 } } : {}),
          ...(isXet(p) ? { xetHash: xetHashOf(p) } : {}),
        };
      });
      const entries = [{ type: 'directory', oid: createHash('sha1').update('unet').digest('hex'), size: 0, path: 'unet' }, ...tree];
      const from = Number(url.searchParams.get('cursor') ?? 0);
      const next = from + TREE_PAGE;
      const link = next < entries.length ? { link: `<${origin}${url.pathname}?recursive=true&expand=false&cursor=${next}>; rel="next"` } : {};
      res.writeHead(200, { 'content-type': 'application/json', ...link }).end(JSON.stringify(entries.slice(from, next)));
      return;
    }
    if (behaviour.xet && url.pathname === '/api/models/acme/svd-tiny/xet-read-token/main') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accessToken: xetToken, exp: Math.floor(Date.now() / 1000) + 3600, casUrl: `${origin}/cas` }));
      return;
    }
    const m = /^\/acme\/svd-tiny\/resolve\/main\/(.+)$/.exec(url.pathname);
    const rel = m ? decodeURIComponent(m[1]!) : '';
    if (!m || !files.includes(rel)) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end();
    // Asked for Xet details, the hub answers a Xet file's resolve URL with them instead of redirecting to its bytes.
    if (isXet(rel) && req.headers.accept?.includes('application/vnd.xet-fileinfo+json')) {
      requests.push({ kind: 'xet-info', path: rel });
      const data = readFileSync(join(FIXTURE_MODEL, rel));
      const hash = xetHashOf(rel);
      const refreshUrl = `${origin}/api/models/acme/svd-tiny/xet-read-token/main`;
      const reconstructionUrl = `${origin}/cas/v1/reconstructions/${hash}`;
      const etag = `"${sha256(data)}"`;
      res
        .writeHead(200, {
          'content-type': 'application/vnd.xet-fileinfo+json',
          'x-xet-hash': hash,
          'x-linked-size': data.length,
          'x-linked-etag': etag,
          link: `<${refreshUrl}>; rel="xet-auth", <${reconstructionUrl}>; rel="xet-reconstruction-info"`,
        })
        .end(JSON.stringify({ hash, refreshUrl, reconstructionUrl, etag, size: data.length }));
      return;
    }
    requests.push({ kind: 'resolve', path: rel, range: req.headers.range });
    const start = range ? Number(range[1]) : 0;
    const data = served(rel, start);
    const body = data.subarray(start);
    res.writeHead(range ? 206 : 200, { 'content-length': body.length, ...(range ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}) });
    if (behaviour.cutAfter && body.length > behaviour.cutAfter && !cut.has(rel)) {
      cut.set(rel, 1);
      res.write(body.subarray(0, behaviour.cutAfter), () => res.destroy());
      return;
    }
    res.end(body);
  });
  return { server, requests, treePages: () => treePages };
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()));
  const a = s.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

describe('model download', () => {
  const servers: Server[] = [];
  const hub = async (b: HubBehaviour) => {
    const h = fakeHub(b);
    servers.push(h.server);
    return { endpoint: await listen(h.server), requests: h.requests, treePages: h.treePages };
  };
  afterAll(() => servers.forEach((s) => s.close()));
  const base = { repo: 'acme/svd-tiny', backoffMs: 10 };
  const storages = [
    { storage: 'LFS', xet: false },
    { storage: 'Xet', xet: true },
  ];

  it.each(storages)('downloads a complete, loadable model ($storage), and a second run only verifies', async ({ xet }) => {
    const { endpoint, requests, treePages } = await hub({ xet });
    const dest = tempDir();
    const events: DownloadProgress[] = [];
    const files = await downloadModel({ ...base, endpoint, dest, onProgress: (e) => events.push(e) });
    // Every page of the file list was read.
    expect(treePages()).toBeGreaterThan(1);
    const everyFile = walk(FIXTURE_MODEL).map((p) => ({ path: relative(FIXTURE_MODEL, p), size: 0 }));
    const wanted = selectSvdFiles(everyFile).map((f) => f.path);
    expect(files.map((f) => f.path).sort()).toEqual(wanted.sort());
    // Xet files come as xorbs from the CAS, the rest from their resolve URLs.
    const weights = requests.filter((r) => r.path.endsWith('.safetensors'));
    expect(weights.some((r) => r.kind === 'xorb')).toBe(xet);
    expect(weights.some((r) => r.kind === 'resolve')).toBe(!xet);
    expect(openModelDir(dest).unet.config.block_out_channels).toEqual([32, 32, 64]);
    for (const f of files) expect(readFileSync(join(dest, f.path)).equals(readFileSync(join(FIXTURE_MODEL, f.path)))).toBe(true);
    const n = requests.length;
    const again: DownloadProgress[] = [];
    await downloadModel({ ...base, endpoint, dest, onProgress: (e) => again.push(e) });
    expect(requests.length).toBe(n);
    expect(again.every((e) => e.type === 'verified')).toBe(true);
  });

  it('resumes a file after the connection is cut mid-file', async () => {
    const { endpoint, requests } = await hub({ cutAfter: 1_000_000 });
    const dest = tempDir();
    await downloadModel({ ...base, endpoint, dest });
    const unet = attemptsOf(requests, 'unet/diffusion_pytorch_model.fp16.safetensors');
    expect(unet.length).toBe(2);
    expect(unet[1]!.range).toBe('bytes=1000000-');
    expect(statSync(join(dest, 'unet/diffusion_pytorch_model.fp16.safetensors')).size).toBe(statSync(join(FIXTURE_MODEL, 'unet/diffusion_pytorch_model.fp16.safetensors')).size);
  });

  it('resumes a Xet file from the bytes already on disk', async () => {
    const { endpoint, requests } = await hub({ xet: true });
    const dest = tempDir();
    const file = 'unet/diffusion_pytorch_model.fp16.safetensors';
    const whole = readFileSync(join(FIXTURE_MODEL, file));
    mkdirSync(join(dest, 'unet'));
    writeFileSync(join(dest, `${file}.incomplete`), whole.subarray(0, 1_500_000));
    await downloadModel({ ...base, endpoint, dest });
    expect(attemptsOf(requests, file).map((r) => r.range)).toEqual([`bytes=1500000-${whole.length - 1}`]);
    // Only the xorbs from the one holding byte 1,500,000 on.
    expect(requests.filter((r) => r.kind === 'xorb' && r.path === file).length).toBe(Math.ceil(whole.length / XORB_SPAN) - Math.floor(1_500_000 / XORB_SPAN));
    expect(readFileSync(join(dest, file)).equals(whole)).toBe(true);
  });

  it('resumes a Xet file after the connection is cut mid-file', async () => {
    const { endpoint, requests } = await hub({ xet: true, cutAfter: 3_000_000 });
    const dest = tempDir();
    const file = 'unet/diffusion_pytorch_model.fp16.safetensors';
    const events: DownloadProgress[] = [];
    await downloadModel({ ...base, endpoint, dest, onProgress: (e) => events.push(e) });
    expect(events).toContainEqual(expect.objectContaining({ type: 'retry', path: file }));
    const attempts = attemptsOf(requests, file);
    expect(attempts.length).toBeGreaterThan(1);
    // The next attempt starts at a chunk boundary after the bytes already written.
    const resumedAt = Number(/^bytes=(\d+)-/.exec(attempts.at(-1)!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt % XET_CHUNK).toBe(0);
    expect(readFileSync(join(dest, file)).equals(readFileSync(join(FIXTURE_MODEL, file)))).toBe(true);
  });

  it.each(storages)('explains a 401 and works with HF_TOKEN ($storage)', async ({ xet }) => {
    const { endpoint } = await hub({ token: 'hf_secret', xet });
    await expect(downloadModel({ ...base, endpoint, dest: tempDir() })).rejects.toThrow(/refused .* \(401\): accept the model license .* set HF_TOKEN/);
    await expect(downloadModel({ ...base, endpoint, dest: tempDir(), token: 'secret' })).rejects.toThrow(/HF_TOKEN is not a Hugging Face access token \(those start with hf_\)/);
    await expect(downloadModel({ ...base, endpoint, dest: tempDir(), token: 'hf_secret' })).resolves.toBeTruthy();
  });

  it.each(storages)('detects a wrong sha256 ($storage) and fetches the file again', async ({ xet }) => {
    const file = 'vae/diffusion_pytorch_model.fp16.safetensors';
    const { endpoint, requests } = await hub({ corruptOnce: file, xet });
    const dest = tempDir();
    const events: DownloadProgress[] = [];
    await downloadModel({ ...base, endpoint, dest, onProgress: (e) => events.push(e) });
    expect(events).toContainEqual({ type: 'mismatch', path: file });
    expect(attemptsOf(requests, file).length).toBe(2);
    expect(readFileSync(join(dest, file)).equals(readFileSync(join(FIXTURE_MODEL, file)))).toBe(true);
    // A file damaged on disk later is found on the next run and fetched again.
    const unet = join(dest, 'unet/diffusion_pytorch_model.fp16.safetensors');
    const good = readFileSync(unet);
    writeFileSync(unet, Buffer.from(good).fill(1, 5000, 6000));
    await downloadModel({ ...base, endpoint, dest });
    expect(readFileSync(unet).equals(good)).toBe(true);
  });

  it('says how much space is missing before downloading', async () => {
    const { endpoint, requests } = await hub({});
    await expect(downloadModel({ ...base, endpoint, dest: tempDir(), freeBytes: () => 1000 })).rejects.toThrow(/not enough disk space in .*: the download needs 0\.01 GB more and 0\.00 GB is free/);
    expect(requests.length).toBe(0);
  });

  it('npm run setup downloads, converts and self-tests a model from the hub, then only verifies', async () => {
    const { endpoint } = await hub({ token: 'hf_x', xet: true });
    const dir = tempDir();
    const env = { ...process.env, HF_ENDPOINT: endpoint, HF_TOKEN: 'hf_x', SVD_STUDIO_CACHE: tempDir() };
    // Asynchronous: the fake hub answers from this same process.
    const npmSetup = (target: string, e: NodeJS.ProcessEnv) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
        // npm run setup from the sources (test/packaging.test.ts runs the compiled code)
        const child = spawn('node_modules/.bin/tsx', ['cli/launch.ts', 'cli/setup-model.ts', '--repo', 'acme/svd-tiny', '--dir', target], { env: e });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (status) => ok({ status, stdout, stderr }));
      });
    const run = () => npmSetup(dir, env);
    const first = await run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/fetched +unet\/diffusion_pytorch_model\.fp16\.safetensors/);
    expect(first.stdout).toMatch(/self-test passed/);
    const second = await run();
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).not.toMatch(/fetched/);
    expect(second.stdout).toMatch(/ok +unet\/diffusion_pytorch_model\.fp16\.safetensors/);
    const denied = await npmSetup(tempDir(), { ...env, HF_TOKEN: '' });
    expect(denied.status).toBe(1);
    expect(denied.stderr).toMatch(/accept the model license/);
  });

  it('installs AnimateLCM as SVD-XT without its UNet weights plus the distilled UNet, assembled as the shipped tiny demo; a second run only verifies', async () => {
    const { endpoint, requests } = await hub({});
    const dest = tempDir();
    await downloadAnimateLcm({ endpoint, dest, backoffMs: 10 }, LCM_SOURCE);
    expect(requests.some((r) => r.path === 'unet/diffusion_pytorch_model.fp16.safetensors')).toBe(false);
    const made = walk(dest)
      .filter((p) => !p.includes('.svd-verified'))
      .map((p) => relative(dest, p))
      .sort();
    expect(made).toEqual(
      walk(DEMO_ANIMATELCM_MODEL)
        .map((p) => relative(DEMO_ANIMATELCM_MODEL, p))
        .sort(),
    );
    for (const f of made) expect(readFileSync(join(dest, f)).equals(readFileSync(join(DEMO_ANIMATELCM_MODEL, f))), f).toBe(true);
    expect(openModelDir(dest).scheduler.config._class_name).toBe('AnimateLCMSVDStochasticIterativeScheduler');
    const n = requests.length;
    const again: DownloadProgress[] = [];
    await downloadAnimateLcm({ endpoint, dest, onProgress: (e) => again.push(e) }, LCM_SOURCE);
    expect(requests.length).toBe(n);
    expect(again.map((e) => e.type)).toEqual(made.filter((p) => p !== 'scheduler/scheduler_config.json' && p !== 'model_index.json').map(() => 'verified'));
    // A distilled UNet that is not the one this version knows is refused, not installed.
    await expect(downloadAnimateLcm({ endpoint, dest: tempDir() }, { ...LCM_SOURCE, sha256: '0'.repeat(64) })).rejects.toThrow(/changed on the hub/);
  });

  it('refuses a UNet checkpoint in another layout, saying what it found', () => {
    const dir = tempDir();
    const copy = (rel: string) => writeFileSync(join(dir, rel), readFileSync(join(DEMO_ANIMATELCM_MODEL, rel)));
    for (const d of ['unet', 'scheduler']) mkdirSync(join(dir, d));
    copy('unet/config.json');
    const checkpoint = join(dir, ANIMATELCM_UNET_PATH);
    writeSafetensors(checkpoint, { 'module.conv_in.weight': float32Tensor([32, 8, 3, 3], new Float32Array(32 * 8 * 9)) });
    expect(() => assembleAnimateLcm(dir)).toThrow(/names carry a prefix \("module\."\), no tensor "conv_in.weight"/);
    writeSafetensors(checkpoint, { 'conv_in.weight': float32Tensor([32, 4, 3, 3], new Float32Array(32 * 4 * 9)) });
    expect(() => assembleAnimateLcm(dir)).toThrow(/conv_in.weight is \[32, 4, 3, 3\], the config asks for \[32, 8, …\]/);
    writeFileSync(join(dir, 'unet', 'diffusion_pytorch_model.fp16.safetensors'), '');
    expect(() => assembleAnimateLcm(dir)).toThrow(/would be used instead of AnimateLCM's UNet/);
  });

  it('prefers fp16 weights and keeps the configs', () => {
    const chosen = selectSvdFiles([
      { path: 'model_index.json', size: 1 },
      { path: 'unet/config.json', size: 1 },
      { path: 'unet/diffusion_pytorch_model.safetensors', size: 9 },
      { path: 'unet/diffusion_pytorch_model.fp16.safetensors', size: 5 },
      { path: 'vae/diffusion_pytorch_model.safetensors', size: 9 },
      { path: 'svd_xt.safetensors', size: 99 },
      { path: 'image_encoder/model.fp16.safetensors', size: 5 },
    ]).map((f) => f.path);
    expect(chosen).toEqual([
      'model_index.json',
      'unet/config.json',
      'unet/diffusion_pytorch_model.fp16.safetensors',
      'vae/diffusion_pytorch_model.safetensors',
      'image_encoder/model.fp16.safetensors',
    ]);
  });
});
