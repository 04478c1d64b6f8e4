// A cheap live preview: the denoised latent of the middle frame mapped to RGB with the usual
// linear approximation of the SD VAE (no decoder run), as a small JPEG data URL.
import sharp from 'sharp';

const LATENT_RGB = [
  [0.298, 0.207, 0.208],
  [0.187, 0.286, 0.173],
  [-0.158, 0.189, 0.264],
  [-0.184, -0.271, -0.473],
];

export async function latentPreview(latents: Float32Array, dims: { frames: number; channels: number; height: number; width: number }, outWidth = 256): Promise<string> {
  const { frames, channels, height, width } = dims;
  const frame = Math.floor(frames / 2);
  const plane = height * width;
  const rgb = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < Math.min(channels, 4); k++) v += latents[(frame * channels + k) * plane + p]! * LATENT_RGB[k]![c]!;
      rgb[p * 3 + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
    }
  }
  const jpeg = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .resize({ width: outWidth, kernel: 'cubic' })
    .jpeg({ quality: 70 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
