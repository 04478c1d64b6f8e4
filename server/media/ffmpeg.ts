// A small typed wrapper around the system ffmpeg: raw RGB frames in, a browser-playable
// MP4 (H.264, yuv420p, faststart), WebM (VP9) or GIF (palette) out.
import { spawn } from 'node:child_process';
import { existsSync, linkSync, rmSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

import { videoFormatOf, type VideoFormat } from '../../common/video-formats.js';

export interface RawVideo {
  /** Interleaved 8-bit RGB, [frames, height, width, 3]. */
  rgb: Uint8Array;
  frameCount: number;
  width: number;
  height: number;
  fps: number;
}

export class FfmpegError extends Error {
  constructor(message: string, readonly stderr = '') {
    super(message);
    this.name = 'FfmpegError';
  }
}

export function ffmpegPath(): string {
  return process.env.FFMPEG_PATH ?? 'ffmpeg';
}

export function formatFromPath(path: string): VideoFormat {
  const format = videoFormatOf(path);
  if (format) return format;
  throw new FfmpegError(`cannot tell the video format from "${path}": use a name ending in .mp4, .webm or .gif`);
}

function encoderArgs(format: VideoFormat): string[] {
  switch (format) {
    case 'mp4':
      return ['-c:v', 'libx264', '-preset', 'medium', '-crf', '17', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', '-f', 'mp4'];
    case 'webm':
      return ['-c:v', 'libvpx-vp9', '-crf', '30', '-b:v', '0', '-pix_fmt', 'yuv420p', '-f', 'webm'];
    case 'gif':
      return ['-filter_complex', '[0:v]split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=sierra2_4a', '-loop', '0', '-f', 'gif'];
  }
}

/** Runs ffmpeg with `input` on stdin; rejects with its stderr tail on failure. */
export function runFfmpeg(args: string[], input?: Uint8Array, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', ...args], { stdio: ['pipe', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new FfmpegError(`ffmpeg was not found (${ffmpegPath()}); install it (apt-get install ffmpeg) or set FFMPEG_PATH`));
      else reject(new FfmpegError(`ffmpeg failed to start: ${err.message}`));
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new FfmpegError(`ffmpeg exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`, stderr));
    });
    child.stdin.on('error', () => {}); // a failing ffmpeg closes stdin early; 'close' reports why
    child.stdin.end(input ? Buffer.from(input.buffer, input.byteOffset, input.byteLength) : undefined);
  });
}

/**
 * Encodes frames to `outPath` without ever replacing an existing file: the video is written
 * beside it under a temporary name and hard-linked into place, which fails if the name is taken.
 */
export async function encodeVideo(video: RawVideo, outPath: string, format: VideoFormat = formatFromPath(outPath), signal?: AbortSignal): Promise<string> {
  if (existsSync(outPath)) throw new FfmpegError(`${outPath} already exists; choose another name (finished videos are never overwritten)`);
  const expected = video.frameCount * video.width * video.height * 3;
  if (video.rgb.length !== expected) throw new FfmpegError(`frame data has ${video.rgb.length} bytes, expected ${expected}`);
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await runFfmpeg(
      ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${video.width}x${video.height}`, '-framerate', String(video.fps), '-i', 'pipe:0', ...encoderArgs(format), '-y', tmp],
      video.rgb,
      signal,
    );
    try {
      linkSync(tmp, outPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new FfmpegError(`${outPath} appeared while encoding; the new video was not saved over it`);
      throw err;
    }
    return outPath;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Ping-pong (forward then back, without repeating the end frames) and repeats, before encoding. */
export function arrangeFrames(video: RawVideo, opts: { pingPong?: boolean; loops?: number }): RawVideo {
  const frameBytes = video.width * video.height * 3;
  const order = Array.from({ length: video.frameCount }, (_, i) => i);
  if (opts.pingPong && video.frameCount > 2) order.push(...order.slice(1, -1).reverse());
  const loops = Math.max(1, opts.loops ?? 1);
  const all = Array.from({ length: loops }, () => order).flat();
  if (all.length === video.frameCount) return video;
  const rgb = new Uint8Array(all.length * frameBytes);
  all.forEach((src, i) => rgb.set(video.rgb.subarray(src * frameBytes, (src + 1) * frameBytes), i * frameBytes));
  return { ...video, rgb, frameCount: all.length };
}

/** Whether the ffmpeg binary can be started; the reason when it cannot. */
export async function checkFfmpeg(): Promise<string | undefined> {
  try {
    await runFfmpeg(['-version']);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
