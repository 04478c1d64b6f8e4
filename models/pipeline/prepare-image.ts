// Decodes an uploaded image and brings it to the generation size: EXIF orientation applied,
// alpha flattened on white, then crop (cover + movable window), fit (letterbox) or stretch.
import sharp from 'sharp';
import { z } from 'zod';

export const resizeModes = ['crop', 'fit', 'stretch'] as const;
export type ResizeMode = (typeof resizeModes)[number];

export const framingSchema = z.object({
  width: z.number().int().positive().multipleOf(64, 'width must be a multiple of 64'),
  height: z.number().int().positive().multipleOf(64, 'height must be a multiple of 64'),
  mode: z.enum(resizeModes).default('crop'),
  /** Crop window position over the free range: 0 = left/top edge, 0.5 = centre, 1 = right/bottom. */
  x: z.number().min(0).max(1).default(0.5),
  y: z.number().min(0).max(1).default(0.5),
});
export type Framing = z.input<typeof framingSchema>;

export interface RgbImage {
  /** Interleaved 8-bit RGB, row-major [height, width, 3]. */
  data: Uint8Array;
  width: number;
  height: number;
}

export class ImageInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageInputError';
  }
}

const MAX_INPUT_PIXELS = 100_000_000;

/** Decodes the first frame of PNG, JPEG, WebP, AVIF, GIF or TIFF into upright RGB on white. */
export async function decodeImage(input: Buffer | string): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(input, { pages: 1, limitInputPixels: MAX_INPUT_PIXELS })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (err) {
    const what = typeof input === 'string' ? input : 'the uploaded file';
    throw new ImageInputError(`could not read ${what} as an image (${(err as Error).message}); use a PNG, JPEG, WebP, AVIF, GIF or TIFF file`);
  }
}

/** Where the crop window sits: offsets in [0,1] mapped linearly over the free range. */
export function cropWindow(srcW: number, srcH: number, width: number, height: number, x: number, y: number) {
  const scale = Math.max(width / srcW, height / srcH);
  const coverW = Math.max(width, Math.round(srcW * scale));
  const coverH = Math.max(height, Math.round(srcH * scale));
  return { coverW, coverH, left: Math.round(x * (coverW - width)), top: Math.round(y * (coverH - height)) };
}

export async function frameImage(image: RgbImage, framing: Framing): Promise<RgbImage> {
  const parsed = framingSchema.safeParse(framing);
  if (!parsed.success) throw new ImageInputError(parsed.error.issues.map((i) => `${i.path.join('.') || 'framing'}: ${i.message}`).join('; '));
  const { width, height, mode, x, y } = parsed.data;
  if (image.width === width && image.height === height) return image;
  const raw = { raw: { width: image.width, height: image.height, channels: 3 as const } };
  let pipeline = sharp(image.data, raw);
  if (mode === 'stretch') pipeline = pipeline.resize({ width, height, fit: 'fill', kernel: 'lanczos3' });
  else if (mode === 'fit') pipeline = pipeline.resize({ width, height, fit: 'contain', background: '#000000', kernel: 'lanczos3' });
  else {
    const w = cropWindow(image.width, image.height, width, height, x, y);
    pipeline = pipeline.resize({ width: w.coverW, height: w.coverH, fit: 'fill', kernel: 'lanczos3' }).extract({ left: w.left, top: w.top, width, height });
  }
  const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

export async function prepareImage(input: Buffer | string, framing: Framing): Promise<RgbImage> {
  return frameImage(await decodeImage(input), framing);
}
