// How an image is brought to the generation size; pure, so the page and the server share it.
import { z } from 'zod';

export const resizeModes = ['crop', 'fit', 'stretch'] as const;
export type ResizeMode = (typeof resizeModes)[number];

export const framingSchema = z.object({
  width: z.number().int().positive().multipleOf(64, 'must be a multiple of 64'),
  height: z.number().int().positive().multipleOf(64, 'must be a multiple of 64'),
  mode: z.enum(resizeModes).default('crop'),
  /** Crop window position over the free range: 0 = left/top edge, 0.5 = centre, 1 = right/bottom. */
  x: z.number().min(0).max(1).default(0.5),
  y: z.number().min(0).max(1).default(0.5),
});
export type Framing = z.input<typeof framingSchema>;

/** Where the crop window sits: offsets in [0,1] mapped linearly over the free range. */
export function cropWindow(srcW: number, srcH: number, width: number, height: number, x: number, y: number) {
  const scale = Math.max(width / srcW, height / srcH);
  const coverW = Math.max(width, Math.round(srcW * scale));
  const coverH = Math.max(height, Math.round(srcH * scale));
  return { coverW, coverH, left: Math.round(x * (coverW - width)), top: Math.round(y * (coverH - height)) };
}
