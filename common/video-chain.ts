// How long a job's video comes out with the extend and interpolate settings, and how to get the
// frame interpolator: shared by the engine, the server's checks, the CLI and the page.

/** The command that installs the frame interpolator (RIFE). */
export const INSTALL_INTERPOLATOR_COMMAND = 'npm run setup -- --interpolator rife';

export const interpolationFactors = [1, 2, 4, 8] as const;

/** Frames after interpolating `frames` by `factor`: K − 1 new ones between each pair. */
export function interpolatedCount(frames: number, factor: number): number {
  return (frames - 1) * factor + 1;
}

/** Frames a job of these settings ends with: its segments joined sharing a frame, then interpolated. */
export function chainFrameCount(settings: { frames?: number; extend: number; interpolate: number }, defaultFrames: number): number {
  const F = settings.frames ?? defaultFrames;
  return interpolatedCount(settings.extend * F - (settings.extend - 1), settings.interpolate);
}
