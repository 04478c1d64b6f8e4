// Converts a diffusers SVD repository into ONNX files in a cache directory keyed by the source
// files (config text, weights file identity, graph options, and the graph code itself), so a
// second run with the same inputs is instant.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNetworkFile, componentOf, networkDType, NETWORKS, type BuildOptions, type NetworkName } from './build.js';
import { openModelDir, type SvdModelDir } from './model-dir.js';
import type { GraphDType } from './onnx/graph-builder.js';

export interface ConvertOptions {
  model: string;
  dtype: GraphDType;
  attention: BuildOptions['attention'];
  forms?: BuildOptions['forms'];
  cacheDir?: string;
  networks?: readonly NetworkName[];
  onEvent?: (e: ConvertEvent) => void;
}

export type ConvertEvent =
  | { type: 'cached'; network: NetworkName; path: string }
  | { type: 'building'; network: NetworkName }
  | { type: 'progress'; network: NetworkName; written: number; total: number }
  | { type: 'built'; network: NetworkName; path: string; seconds: number; bytes: number };

export interface ConvertedModel {
  model: SvdModelDir;
  files: Record<NetworkName, string>;
}

export function defaultCacheDir(): string {
  return process.env.SVD_STUDIO_CACHE ?? join(homedir(), '.cache', 'svd-studio', 'onnx');
}

let codeHash: string | undefined;
/** Hash of the graph-building source, so changed network code never reuses stale files. */
export function graphCodeHash(): string {
  if (codeHash) return codeHash;
  const h = createHash('sha256');
  const here = dirname(fileURLToPath(import.meta.url));
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (/\.(ts|js)$/.test(entry.name)) h.update(entry.name).update(readFileSync(p));
    }
  };
  walk(join(here, 'networks'));
  walk(join(here, 'onnx'));
  return (codeHash = h.digest('hex').slice(0, 16));
}

export function cacheKey(model: SvdModelDir, network: NetworkName, opts: BuildOptions): string {
  const { weightsPath, configText } = componentOf(model, network);
  const st = statSync(weightsPath);
  const key = JSON.stringify({ network, ...opts, config: configText, weights: resolve(weightsPath), size: st.size, mtime: st.mtimeMs, code: graphCodeHash() });
  return createHash('sha256').update(key).digest('hex').slice(0, 24);
}

/**
 * Moves a finished build into place. Workers on several cards load the same model at once, so
 * another process may have published the same network meanwhile: its file is used, ours dropped.
 */
export function publishBuild(tmp: string, dir: string, path: string): void {
  try {
    renameSync(tmp, dir);
  } catch (err) {
    if (!existsSync(path)) throw err;
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function convertModel(opts: ConvertOptions): ConvertedModel {
  const model = openModelDir(opts.model);
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const files = {} as Record<NetworkName, string>;
  for (const network of opts.networks ?? NETWORKS) {
    const build: BuildOptions = { dtype: networkDType(model, network, opts.dtype), attention: opts.attention, ...(opts.forms ? { forms: opts.forms } : {}) };
    const dir = join(cacheDir, `${network}-${cacheKey(model, network, build)}`);
    const path = join(dir, `${network}.onnx`);
    if (existsSync(path)) {
      opts.onEvent?.({ type: 'cached', network, path });
      files[network] = path;
      continue;
    }
    opts.onEvent?.({ type: 'building', network });
    const started = performance.now();
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      const result = buildNetworkFile(model, network, join(tmp, `${network}.onnx`), build, (written, total) => opts.onEvent?.({ type: 'progress', network, written, total }));
      writeFileSync(join(tmp, 'manifest.json'), JSON.stringify({ network, ...build, source: componentOf(model, network).weightsPath, ...result, modelPath: undefined, dataPath: undefined }, null, 2));
      publishBuild(tmp, dir, path);
      opts.onEvent?.({ type: 'built', network, path, seconds: (performance.now() - started) / 1000, bytes: result.dataBytes + result.modelBytes });
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    files[network] = path;
  }
  return { model, files };
}
