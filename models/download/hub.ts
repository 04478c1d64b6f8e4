// Downloads a diffusers-layout SVD repository from the Hugging Face hub (or any server with the
// same file endpoints): the JSON configs and the fp16 weights, resuming interrupted files with
// HTTP Range, retrying with backoff, and checking each weights file's sha256 against the hub's
// LFS metadata. A second run only verifies.
//
// @huggingface/hub lists the repository (it follows the tree API's pages) and reads files kept
// in Xet storage through the Xet protocol (a slice of its blob resumes one). It does not resume
// a plain download, check a sha256, or tell a 206 from a 200 (its blob streams hide the status),
// so plain files keep our resolve URL and Range code, and every file keeps our sha256 check.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, openSync, closeSync, renameSync, statSync, statfsSync, writeSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { downloadFile as hubDownloadFile, fileDownloadInfo, HubApiError, listFiles } from '@huggingface/hub';
import { z } from 'zod';

export const MODEL_REPOS = {
  'svd-xt': 'stabilityai/stable-video-diffusion-img2vid-xt',
  svd: 'stabilityai/stable-video-diffusion-img2vid',
} as const;

export interface HubFile {
  path: string;
  size: number;
  /** sha256 from the LFS pointer, for large files. */
  sha256?: string;
  /** Set for files kept in Xet storage, which the library reads through the Xet protocol. */
  xetHash?: string;
  /** Where it goes under the destination, when not at its path in the repository. */
  saveAs?: string;
  /** A file from outside the hub (a release asset): fetched from here, with the same resume and check. */
  url?: string;
}

const localPath = (file: HubFile) => file.saveAs ?? file.path;

export interface DownloadOptions {
  repo: string;
  dest: string;
  endpoint?: string;
  token?: string;
  revision?: string;
  retries?: number;
  backoffMs?: number;
  onProgress?: (e: DownloadProgress) => void;
  /** Free bytes at a path (statfs by default); replaceable in tests. */
  freeBytes?: (dir: string) => number;
}

export type DownloadProgress =
  | { type: 'verified'; path: string }
  | { type: 'progress'; path: string; bytes: number; total: number; bytesPerSecond: number; etaSeconds: number }
  | { type: 'done'; path: string }
  | { type: 'retry'; path: string; attempt: number; reason: string }
  | { type: 'mismatch'; path: string };

export class HubError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HubError';
  }
}

const treeEntrySchema = z.object({
  type: z.string(),
  path: z.string(),
  size: z.number().optional(),
  lfs: z.object({ oid: z.string(), size: z.number() }).optional(),
  xetHash: z.string().optional(),
});

function authHeaders(opts: DownloadOptions): Record<string, string> {
  return opts.token ? { authorization: `Bearer ${opts.token}` } : {};
}

function hubEndpoint(opts: DownloadOptions): string {
  return opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co';
}

/** The library's credentials: it refuses (with a TypeError) a token that is not a hub access token. */
function hubParams(opts: DownloadOptions) {
  if (opts.token && !opts.token.startsWith('hf_')) {
    throw new HubError(
      'HF_TOKEN is not a Hugging Face access token (those start with hf_): create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN=... before running setup again',
    );
  }
  return { repo: opts.repo, revision: opts.revision, hubUrl: hubEndpoint(opts), accessToken: opts.token || undefined };
}

/** Where a file's bytes collect until they are complete and checked. */
function partialPath(dest: string, file: HubFile): string {
  return `${join(dest, localPath(file))}.incomplete`;
}

function explainStatus(status: number, repo: string, what: string): HubError {
  if (status === 401 || status === 403) {
    return new HubError(
      `the hub refused ${what} (${status}): accept the model license at https://huggingface.co/${repo} while logged in, then create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN=... before running setup again`,
    );
  }
  if (status === 404) return new HubError(`${what} was not found on the hub (404); check the repository name (${repo})`);
  return new HubError(`the hub answered ${status} for ${what}`);
}

/** The library's HTTP errors carry the status; ours explain it. */
function explainLibraryError(err: unknown, repo: string, what: string): unknown {
  return err instanceof HubApiError ? explainStatus(err.statusCode, repo, what) : err;
}

export async function listRepoFiles(opts: DownloadOptions): Promise<HubFile[]> {
  const files: HubFile[] = [];
  try {
    for await (const entry of listFiles({ ...hubParams(opts), recursive: true })) {
      const parsed = treeEntrySchema.safeParse(entry);
      if (!parsed.success) throw new HubError(`unexpected file list from ${hubEndpoint(opts)}/api/models/${opts.repo}/tree/${opts.revision ?? 'main'}`);
      const e = parsed.data;
      if (e.type === 'file') files.push({ path: e.path, size: e.lfs?.size ?? e.size ?? 0, sha256: e.lfs?.oid, xetHash: e.xetHash });
    }
  } catch (err) {
    throw explainLibraryError(err, opts.repo, `the file list of ${opts.repo}`);
  }
  return files;
}

const COMPONENTS = ['unet', 'vae', 'image_encoder'];

/** The files svd-studio needs: model_index.json, every component's JSON, and fp16 weights (else fp32). */
export function selectSvdFiles(files: HubFile[]): HubFile[] {
  const json = files.filter((f) => f.path === 'model_index.json' || /^(unet|vae|image_encoder|scheduler|feature_extractor)\/[^/]+\.json$/.test(f.path));
  const weights = COMPONENTS.flatMap((c) => {
    const st = files.filter((f) => f.path.startsWith(`${c}/`) && f.path.split('/').length === 2 && f.path.endsWith('.safetensors'));
    const fp16 = st.filter((f) => f.path.endsWith('.fp16.safetensors'));
    return fp16.length > 0 ? fp16 : st;
  });
  return [...json, ...weights];
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Verified files are remembered by size and mtime, so a second run does not hash 4.5 GB again. */
function verifiedMarker(dest: string, file: HubFile): string {
  return join(dest, '.svd-verified', `${localPath(file).replace(/\//g, '__')}.${file.sha256 ?? 'nosha'}`);
}

async function isValid(dest: string, file: HubFile): Promise<boolean> {
  const path = join(dest, localPath(file));
  if (!existsSync(path)) return false;
  const st = statSync(path);
  if (file.size && st.size !== file.size) return false;
  if (!file.sha256) return true;
  const marker = verifiedMarker(dest, file);
  if (existsSync(marker) && statSync(marker).mtimeMs >= st.mtimeMs) return true;
  if ((await sha256Of(path)) !== file.sha256) return false;
  mkdirSync(dirname(marker), { recursive: true });
  closeSync(openSync(marker, 'w'));
  return true;
}

function defaultFreeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * The bytes of `file` from offset `have` on, and the offset they really start at (0 where the
 * server ignored the range). Files in Xet storage come through the library's Xet reader; the
 * rest from the resolve URL with an HTTP Range.
 */
async function openFrom(opts: DownloadOptions, file: HubFile, partial: string, have: number): Promise<{ body: ReadableStream<Uint8Array>; from: number }> {
  if (file.xetHash) {
    const params = { ...hubParams(opts), path: file.path };
    const info = await fileDownloadInfo(params).catch((err: unknown) => {
      throw explainLibraryError(err, opts.repo, file.path);
    });
    if (!info) throw explainStatus(404, opts.repo, file.path);
    // Without Xet details the hub serves the file as a plain one: fall through to the Range code.
    if (info.xet) {
      const blob = await hubDownloadFile({ ...params, downloadInfo: info });
      if (!blob) throw explainStatus(404, opts.repo, file.path);
      return { body: blob.slice(have).stream(), from: have };
    }
  }
  const url = file.url ?? `${hubEndpoint(opts)}/${opts.repo}/resolve/${opts.revision ?? 'main'}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
  const res = await fetch(url, { headers: { ...authHeaders(opts), ...(have > 0 ? { range: `bytes=${have}-` } : {}) }, redirect: 'follow' });
  if (res.status === 416) {
    rmSync(partial, { force: true });
    throw new Error('the partial file is longer than the remote file; starting again');
  }
  if (!res.ok) throw explainStatus(res.status, opts.repo, file.path);
  // A 200 to a range request: the server ignored the range, so start over.
  return { body: res.body!, from: have > 0 && res.status !== 206 ? 0 : have };
}

async function fetchInto(opts: DownloadOptions, file: HubFile, partial: string): Promise<void> {
  let have = existsSync(partial) ? statSync(partial).size : 0;
  if (file.size && have > file.size) {
    rmSync(partial, { force: true });
    throw new Error('the partial file is longer than the remote file; starting again');
  }
  const opened = await openFrom(opts, file, partial, have);
  have = opened.from;
  const fd = openSync(partial, have > 0 ? 'r+' : 'w');
  const started = Date.now();
  let written = have;
  try {
    const reader = opened.body.getReader();
    let lastReport = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      try {
        written += writeSync(fd, value, 0, value.length, written);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
          throw new HubError(`the disk is full while writing ${file.path} into ${opts.dest}; free some space (about ${gib(file.size - written)} more) and run setup again: the download resumes`);
        throw err;
      }
      const now = Date.now();
      if (now - lastReport > 250) {
        lastReport = now;
        const rate = (written - have) / Math.max(0.001, (now - started) / 1000);
        opts.onProgress?.({ type: 'progress', path: file.path, bytes: written, total: file.size, bytesPerSecond: rate, etaSeconds: rate > 0 ? (file.size - written) / rate : Infinity });
      }
    }
  } finally {
    closeSync(fd);
  }
  if (file.size && written !== file.size) throw new Error(`got ${written} of ${file.size} bytes`);
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GB`;

export async function downloadFile(opts: DownloadOptions, file: HubFile): Promise<void> {
  const target = join(opts.dest, localPath(file));
  const partial = partialPath(opts.dest, file);
  mkdirSync(dirname(target), { recursive: true });
  const retries = opts.retries ?? 5;
  let delay = opts.backoffMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchInto(opts, file, partial);
      if (file.sha256 && (await sha256Of(partial)) !== file.sha256) {
        rmSync(partial, { force: true });
        opts.onProgress?.({ type: 'mismatch', path: file.path });
        throw new Error(`sha256 of ${file.path} does not match the hub's; fetching it again`);
      }
      renameSync(partial, target);
      opts.onProgress?.({ type: 'done', path: file.path });
      return;
    } catch (thrown) {
      // The library's blob streams fail with the error's message alone.
      const err = thrown instanceof Error ? thrown : new Error(String(thrown));
      if (err instanceof HubError || attempt > retries) throw err;
      opts.onProgress?.({ type: 'retry', path: file.path, attempt, reason: err.message });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30_000);
    }
  }
}

/** Downloads (or verifies) everything svd-studio needs from `opts.repo` into `opts.dest`. */
export async function downloadModel(opts: DownloadOptions): Promise<HubFile[]> {
  const files = selectSvdFiles(await listRepoFiles(opts));
  if (!files.some((f) => f.path.startsWith('unet/') && f.path.endsWith('.safetensors'))) throw new HubError(`${opts.repo} has no unet/*.safetensors: is it a diffusers SVD repository?`);
  return downloadFiles(opts, files);
}

/** Downloads (or verifies) `files` of `opts.repo` into `opts.dest`, after checking the disk has room for what is missing. */
export async function downloadFiles(opts: DownloadOptions, files: HubFile[]): Promise<HubFile[]> {
  mkdirSync(opts.dest, { recursive: true });
  const todo: HubFile[] = [];
  for (const f of files) {
    if (await isValid(opts.dest, f)) opts.onProgress?.({ type: 'verified', path: f.path });
    else todo.push(f);
  }
  const need = todo.reduce((s, f) => {
    const partial = partialPath(opts.dest, f);
    return s + f.size - (existsSync(partial) ? statSync(partial).size : 0);
  }, 0);
  const free = (opts.freeBytes ?? defaultFreeBytes)(opts.dest);
  if (need > free) throw new HubError(`not enough disk space in ${opts.dest}: the download needs ${gib(need)} more and ${gib(free)} is free; free some space or choose another --dir`);
  for (const f of todo) await downloadFile(opts, f);
  return files;
}
