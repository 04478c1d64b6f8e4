// The picture of a new job: a bounded multipart body, its format and pixel count read from the
// header before anything is decoded, and a working copy no larger than any generation size needs.
import type { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import sharp, { type Metadata } from 'sharp';
import { decodeImage } from '../../models/pipeline/prepare-image.js';
import { HttpError, MAX_UPLOAD_BYTES } from './errors.js';

export const MAX_UPLOAD_PIXELS = 50_000_000;
/**
 * The largest generation side (common/settings.ts). A picture whose shorter side is this long
 * covers, fits or stretches to any generation size without being enlarged, so anything beyond it
 * is only disk and decode time.
 */
export const WORKING_SIDE = 2048;

/** Formats sharp may decode for us; others it knows (SVG, PDF, ...) are refused. */
const UPLOAD_FORMATS = new Set(['png', 'jpeg', 'webp', 'gif', 'tiff', 'heif']);
const FORMATS_HINT = 'use a PNG, JPEG, WebP, AVIF, GIF or TIFF file';

const multipart = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 4, fieldSize: 64 * 1024, parts: 8, headerPairs: 100 } });

/** multer's single-file parser; a body cut off or malformed is the client's (busboy reports it as a plain Error). */
export function receiveImage(req: Request, res: Response, next: NextFunction) {
  multipart.single('image')(req, res, (err?: unknown) => {
    if (!err || err instanceof multer.MulterError) return next(err);
    next(new HttpError(400, `the upload is malformed or was cut off (${(err as Error).message}); send it again as multipart/form-data`));
  });
}

/** Checks the format and the pixel count from the header before decoding, then stores an upright RGB PNG of working size. */
export async function normaliseUpload(data: Buffer): Promise<Uint8Array> {
  let meta: Metadata;
  try {
    // Only the header is read here, so no pixel limit yet: ours below gives the clearer message.
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch {
    throw new HttpError(415, `the upload is not an image we can read; ${FORMATS_HINT}`);
  }
  if (meta.format === 'heif' && meta.compression === 'hevc') {
    throw new HttpError(415, `HEIC photos (the iPhone's default) cannot be read here; ${FORMATS_HINT} (on the iPhone: Settings > Camera > Formats > Most Compatible, or share the photo as JPEG)`);
  }
  if (!UPLOAD_FORMATS.has(meta.format)) throw new HttpError(415, `${meta.format.toUpperCase()} files are not accepted; ${FORMATS_HINT}`);
  const pixels = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0);
  if (pixels > MAX_UPLOAD_PIXELS) throw new HttpError(413, `the image has ${(pixels / 1e6).toFixed(0)} megapixels, over the ${MAX_UPLOAD_PIXELS / 1e6} MP limit; scale it down first`);
  const img = await decodeImage(data).catch(() => {
    throw new HttpError(415, `the image could not be decoded: the file may be damaged or cut off; ${FORMATS_HINT}`);
  });
  const scale = Math.min(1, WORKING_SIDE / Math.min(img.width, img.height));
  const pipeline = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (scale < 1) pipeline.resize(Math.max(1, Math.round(img.width * scale)), Math.max(1, Math.round(img.height * scale)), { kernel: 'lanczos3' });
  return pipeline.png().toBuffer();
}
