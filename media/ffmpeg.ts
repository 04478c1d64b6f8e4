// A small typed wrapper around the system ffmpeg: raw RGB frames in, a browser-playable
// MP4 (H.264, yuv420p, faststart), WebM (VP9) or GIF (palette) out, each checked with ffprobe
// before it is called a result (ffmpeg can exit 0 after a write failed on a full disk).
import { execFile, spawn } from 'node:child_process';
import { existsSync, linkSync, rmSync, statfsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { DiskFullError, isNoSpace } from './disk-full.js';

import { videoFormatOf, type VideoFormat } from '../common/video-formats.js';

export interface RawVideo {
  /** Interleaved 8-bit RGB, [frames, height, width, 3]. */
  rgb: Uint8Array;
  frameCount: number;
  width: number;
  height: number;
  fps: number;
}

export class FfmpegError extends Error {
  constructor(
    message: string,
    readonly stderr = '',
  ) {
    super(message);
    this.name = 'FfmpegError';
  }
}

/** ffmpeg or ffprobe is not installed: no file can be checked, so nothing is blamed on the file. */
export class FfmpegMissingError extends FfmpegError {}

export function ffmpegPath(): string {
  return process.env.FFMPEG_PATH ?? 'ffmpeg';
}

export function ffprobePath(): string {
  return process.env.FFPROBE_PATH ?? 'ffprobe';
}

const ffprobeMissing = () => new FfmpegMissingError(`ffprobe was not found (${ffprobePath()}); it comes with ffmpeg (apt-get install ffmpeg), or set FFPROBE_PATH`);

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
      if (err.code === 'ENOENT') reject(new FfmpegMissingError(`ffmpeg was not found (${ffmpegPath()}); install it (apt-get install ffmpeg) or set FFMPEG_PATH`));
      else reject(new FfmpegError(`ffmpeg failed to start: ${err.message}`));
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else if (/No space left on device|Disk quota exceeded/i.test(stderr)) reject(new DiskFullError(`the video (ffmpeg: ${stderr.trim().split('\n').at(-1)})`));
      else reject(new FfmpegError(`ffmpeg exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`, stderr));
    });
    child.stdin.on('error', () => {}); // a failing ffmpeg closes stdin early; 'close' reports why
    child.stdin.end(input ? Buffer.from(input.buffer, input.byteOffset, input.byteLength) : undefined);
  });
}

const probeSchema = z.object({
  streams: z.array(z.object({ nb_read_frames: z.coerce.number().int() })).length(1),
  // A one-frame GIF read with -min_delay 0 has no duration.
  format: z.object({ duration: z.coerce.number().optional() }),
});

/** Decodes the file's video stream with ffprobe: how many frames it really holds, and its duration. */
export async function probeVideo(path: string): Promise<{ frames: number; durationS?: number }> {
  let stdout: string;
  try {
    // -min_delay 0: GIF delays as written (by default ffprobe reads those under 2/100 s as 1/10 s, as browsers play them).
    ({ stdout } = await promisify(execFile)(
      ffprobePath(),
      ['-v', 'error', '-min_delay', '0', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames:format=duration', '-of', 'json', path],
      { maxBuffer: 1 << 20 },
    ));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw ffprobeMissing();
    // ffprobe names the file and its demuxer ("[mov,mp4 @ 0x…] moov atom not found"); keep the reason.
    const reason = (e.stderr || e.message)
      .split(path)
      .join('the file')
      .replace(/\[[^\]]* @ 0x[0-9a-f]+\] /g, '')
      .trim()
      .split('\n')
      .slice(-2)
      .join(' | ');
    throw new FfmpegError(`not a readable video (${reason})`);
  }
  const parsed = probeSchema.safeParse(JSON.parse(stdout));
  if (!parsed.success) throw new FfmpegError('no readable video stream');
  return { frames: parsed.data.streams[0]!.nb_read_frames, durationS: parsed.data.format.duration };
}

/** Bytes free to us where `path` lives; Infinity if the file system cannot tell. */
function freeBytes(path: string): number {
  try {
    const s = statfsSync(dirname(path));
    return s.bavail * s.bsize;
  } catch {
    return Infinity;
  }
}

/**
 * Rejects a video whose frames or duration are not what was encoded: a truncated write (`written`,
 * ffmpeg's output here) or a file received from elsewhere that does not hold what its sender says.
 */
export async function verifyVideo(path: string, video: Pick<RawVideo, 'frameCount' | 'fps'>, name = basename(path), source: 'written' | 'received' = 'written'): Promise<void> {
  let problem: string;
  try {
    const found = await probeVideo(path);
    const expected = video.frameCount / video.fps;
    const duration = found.durationS ?? expected;
    // GIF stores delays in 1/100 s, so its duration may be a little off frames / fps.
    if (found.frames === video.frameCount && Math.abs(duration - expected) <= Math.max(2 / video.fps, expected * 0.05)) return;
    problem = `it holds ${found.frames} of ${video.frameCount} frames, ${duration.toFixed(2)} s of ${expected.toFixed(2)} s`;
  } catch (err) {
    if (err instanceof FfmpegMissingError) throw err;
    problem = (err as Error).message;
  }
  if (freeBytes(path) < 1 << 20) throw new DiskFullError(`${name} completely (${problem})`);
  if (source === 'received') throw new FfmpegError(`${name} does not hold the video its result describes: ${problem}`);
  throw new FfmpegError(`ffmpeg wrote an incomplete ${name}: ${problem}`);
}

/**
 * Encodes frames to `outPath` without ever replacing an existing file: the video is written
 * beside it under a temporary name, checked with ffprobe, and hard-linked into place, which
 * fails if the name is taken.
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
    await verifyVideo(tmp, video, basename(outPath));
    try {
      linkSync(tmp, outPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new FfmpegError(`${outPath} appeared while encoding; the new video was not saved over it`);
      if (isNoSpace(err)) throw new DiskFullError(basename(outPath));
      throw err;
    }
    return outPath;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The source frame of each frame written: ping-pong (forward then back, without repeating the end frames), then repeats. */
function frameOrder(frameCount: number, opts: { pingPong?: boolean; loops?: number }): number[] {
  const order = Array.from({ length: frameCount }, (_, i) => i);
  if (opts.pingPong && frameCount > 2) order.push(...order.slice(1, -1).reverse());
  const loops = Math.max(1, opts.loops ?? 1);
  return Array.from({ length: loops }, () => order).flat();
}

/** The frames a video of `frameCount` generated frames holds once arranged (what its file must hold). */
export function arrangedFrameCount(frameCount: number, opts: { pingPong?: boolean; loops?: number }): number {
  return frameOrder(frameCount, opts).length;
}

/** Ping-pong and repeats, before encoding. */
export function arrangeFrames(video: RawVideo, opts: { pingPong?: boolean; loops?: number }): RawVideo {
  const frameBytes = video.width * video.height * 3;
  const all = frameOrder(video.frameCount, opts);
  if (all.length === video.frameCount) return video;
  const rgb = new Uint8Array(all.length * frameBytes);
  all.forEach((src, i) => rgb.set(video.rgb.subarray(src * frameBytes, (src + 1) * frameBytes), i * frameBytes));
  return { ...video, rgb, frameCount: all.length };
}

/** Whether the ffmpeg and ffprobe binaries can be started; the reason when one cannot. */
export async function checkFfmpeg(): Promise<string | undefined> {
  try {
    await runFfmpeg(['-version']);
    await promisify(execFile)(ffprobePath(), ['-version']).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? ffprobeMissing() : new FfmpegError(`ffprobe failed to start: ${err.message}`);
    });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
