// RIFE's published weights and their installation: `npm run setup -- --interpolator rife`.
//
// Practical-RIFE publishes each model as a zip on Google Drive and Baidu (pages, not file URLs a
// program can resume). vs-rife (HolyWu), the VapourSynth port, mirrors the same flownet.pkl of
// each version as a GitHub release asset, which serves byte ranges: that is where it comes from.
// 4.25 is the version Practical-RIFE recommends by default (its README) and vs-rife's default.
import { join } from 'node:path';
import { installRifeCheckpoint } from '../interpolator.js';
import { downloadFiles, type DownloadProgress } from './hub.js';

export const RIFE_RELEASE = {
  version: '4.25',
  url: 'https://github.com/HolyWu/vs-rife/releases/download/model/flownet_v4.25.pkl',
  /** The release lists no checksum; these are the size and sha256 recorded by a project that downloads this asset. */
  size: 24_636_301,
  sha256: '6615790efd627772917205db291f51cd392528a157ecbb2ecaeec3bff8eb6de2',
} as const;

/** Downloads (or verifies) flownet.pkl into `dest` and converts it to the weights the graph reads. */
export async function installRife(
  dest: string,
  opts: { onProgress?: (e: DownloadProgress) => void; release?: { url: string; size: number; sha256: string }; retries?: number; backoffMs?: number } = {},
) {
  const release = opts.release ?? RIFE_RELEASE;
  const file = { path: 'flownet.pkl', size: release.size, sha256: release.sha256, url: release.url };
  await downloadFiles({ repo: 'HolyWu/vs-rife', dest, onProgress: opts.onProgress, retries: opts.retries, backoffMs: opts.backoffMs }, [file]);
  return installRifeCheckpoint(join(dest, file.path), dest);
}
