// How an image is brought to the generation size; pure, so the page and the server share it. The
// framing setting itself ({mode, x, y}) is a row of common/settings.ts.

export const resizeModes = ['crop', 'fit', 'stretch'] as const;
export type ResizeMode = (typeof resizeModes)[number];

/** Where the crop window sits: offsets in [0,1] mapped linearly over the free range. */
export function cropWindow(srcW: number, srcH: number, width: number, height: number, x: number, y: number) {
  const scale = Math.max(width / srcW, height / srcH);
  const coverW = Math.max(width, Math.round(srcW * scale));
  const coverH = Math.max(height, Math.round(srcH * scale));
  return { coverW, coverH, left: Math.round(x * (coverW - width)), top: Math.round(y * (coverH - height)) };
}
