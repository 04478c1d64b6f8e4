// The video files a job or the CLI can write; ffmpeg (media/ffmpeg.ts) knows how to make each.

export const videoFormats = ['mp4', 'webm', 'gif'] as const;
export type VideoFormat = (typeof videoFormats)[number];

/** The format a file name asks for by its extension, if it names one we write. */
export function videoFormatOf(path: string): VideoFormat | undefined {
  const ext = path.split('.').pop()?.toLowerCase();
  return (videoFormats as readonly string[]).includes(ext ?? '') ? (ext as VideoFormat) : undefined;
}
