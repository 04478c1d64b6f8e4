// Decodes an uploaded image and brings it to the generation size: EXIF orientation applied,
// alpha flattened on white, then crop (cover + movable window), fit (letterbox) or stretch.
import sharp from 'sharp';
import { cropWindow } from '../../common/framing.js';
import { formatError } from '../../common/messages.js';
import { frameTargetSchema, type FrameTarget } from '../../common/settings.js';

export { cropWindow, resizeModes, type ResizeMode } from '../../common/framing.js';

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

/** Brings `image` to the target's size, as its framing says (the job's own settings: no renaming). */
export async function frameImage(image: RgbImage, target: FrameTarget): Promise<RgbImage> {
  const parsed = frameTargetSchema.safeParse(target);
  if (!parsed.success) throw new ImageInputError(formatError(parsed.error));
  const {
    width,
    height,
    framing: { mode, x, y },
  } = parsed.data;
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

export async function prepareImage(input: Buffer | string, target: FrameTarget): Promise<RgbImage> {
  return frameImage(await decodeImage(input), target);
}
