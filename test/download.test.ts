// The downloader against a local server that behaves like the hub's file endpoints and serves
// the tiny fixture model.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { downloadModel, selectSvdFiles, type DownloadProgress } from '../models/download/hub.js';
import { openModelDir } from '../models/model-dir.js';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

interface HubBehaviour {
  token?: string;
  /** Close the connection after this many bytes, once per file. */
  cutAfter?: number;
  /** Serve wrong bytes for this file the first time. */
  corruptOnce?: string;
}

/** The file list comes in pages of this many entries, linked like the hub's (`Link: <...>; rel="next"`). */
const TREE_PAGE = 4;

function fakeHub(behaviour: HubBehaviour) {
  const files = walk(FIXTURE_MODEL).map((p) => relative(FIXTURE_MODEL, p));
  const cut = new Set<string>();
  const corrupted = new Set<string>();
  const requests: { path: string; range?: string }[] = [];
  let treePages = 0;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const origin = `http://${req.headers.host}`;
    if (behaviour.token && req.headers.authorization !== `Bearer ${behaviour.token}`) {
      res.writeHead(401).end('{"error":"Access to model is restricted"}');
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
          ...(big ? { lfs: { oid: createHash('sha256').update(data).digest('hex'), size: data.length, pointerSize: 134 } } : {}),
        };
      });
      const entries = [{ type: 'directory', oid: createHash('sha1').update('unet').digest('hex'), size: 0, path: 'unet' }, ...tree];
      const from = Number(url.searchParams.get('cursor') ?? 0);
      const next = from + TREE_PAGE;
      const link = next < entries.length ? { link: `<${origin}${url.pathname}?recursive=true&expand=false&cursor=${next}>; rel="next"` } : {};
      res.writeHead(200, { 'content-type': 'application/json', ...link }).end(JSON.stringify(entries.slice(from, next)));
      return;
    }
    const m = /^\/acme\/svd-tiny\/resolve\/main\/(.+)$/.exec(url.pathname);
    const rel = m ? decodeURIComponent(m[1]!) : '';
    if (!m || !files.includes(rel)) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end();
    requests.push({ path: rel, range: req.headers.range });
    let data = readFileSync(join(FIXTURE_MODEL, rel));
    if (behaviour.corruptOnce === rel && !corrupted.has(rel)) {
      corrupted.add(rel);
      data = Buffer.from(data).fill(7, 1000, 2000);
    }
    let start = 0;
    const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    if (range) start = Number(range[1]);
    const body = data.subarray(start);
    res.writeHead(range ? 206 : 200, { 'content-length': body.length, ...(range ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}) });
    if (behaviour.cutAfter && body.length > behaviour.cutAfter && !cut.has(rel)) {
      cut.add(rel);
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

  it('downloads a complete, loadable model, and a second run only verifies', async () => {
    const { endpoint, requests, treePages } = await hub({});
    const dest = tempDir();
    const events: DownloadProgress[] = [];
    const files = await downloadModel({ ...base, endpoint, dest, onProgress: (e) => events.push(e) });
    // Every page of the file list was read.
    expect(treePages()).toBeGreaterThan(1);
    const everyFile = walk(FIXTURE_MODEL).map((p) => ({ path: relative(FIXTURE_MODEL, p), size: 0 }));
    const wanted = selectSvdFiles(everyFile).map((f) => f.path);
    expect(files.map((f) => f.path).sort()).toEqual(wanted.sort());
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
    const unet = requests.filter((r) => r.path === 'unet/diffusion_pytorch_model.fp16.safetensors');
    expect(unet.length).toBe(2);
    expect(unet[1]!.range).toBe('bytes=1000000-');
    expect(statSync(join(dest, 'unet/diffusion_pytorch_model.fp16.safetensors')).size).toBe(statSync(join(FIXTURE_MODEL, 'unet/diffusion_pytorch_model.fp16.safetensors')).size);
  });

  it('explains a 401 and works with HF_TOKEN', async () => {
    const { endpoint } = await hub({ token: 'hf_secret' });
    await expect(downloadModel({ ...base, endpoint, dest: tempDir() })).rejects.toThrow(/refused .* \(401\): accept the model license .* set HF_TOKEN/);
    await expect(downloadModel({ ...base, endpoint, dest: tempDir(), token: 'secret' })).rejects.toThrow(/HF_TOKEN is not a Hugging Face access token \(those start with hf_\)/);
    await expect(downloadModel({ ...base, endpoint, dest: tempDir(), token: 'hf_secret' })).resolves.toBeTruthy();
  });

  it('detects a wrong sha256 and fetches the file again', async () => {
    const file = 'vae/diffusion_pytorch_model.fp16.safetensors';
    const { endpoint, requests } = await hub({ corruptOnce: file });
    const dest = tempDir();
    const events: DownloadProgress[] = [];
    await downloadModel({ ...base, endpoint, dest, onProgress: (e) => events.push(e) });
    expect(events).toContainEqual({ type: 'mismatch', path: file });
    expect(requests.filter((r) => r.path === file).length).toBe(2);
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
    const { endpoint } = await hub({ token: 'hf_x' });
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
    expect(chosen).toEqual(['model_index.json', 'unet/config.json', 'unet/diffusion_pytorch_model.fp16.safetensors', 'vae/diffusion_pytorch_model.safetensors', 'image_encoder/model.fp16.safetensors']);
  });
});
