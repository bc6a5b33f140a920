import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbaImage } from '../../shared/data/resize.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/** File names the images dataset reads (case-insensitive); any other file in the folder is left alone. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

/**
 * The most pixels one image may decode to: 40 MP is a large camera's photo.
 * A PNG's header or a JPEG's frame says its size before anything is inflated,
 * so a small file that would decode to gigabytes is refused first.
 */
export const MAX_IMAGE_PIXELS = 40_000_000;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes a PNG (pngjs) or JPEG (jpeg-js) file to RGBA bytes, told apart by their first bytes, not the name. */
export function decodeImage(bytes: Uint8Array, name: string, field = 'dataset.path'): RgbaImage {
  const refuse = (reason: string) => new TesseraError(ErrorCode.InvalidConfig, `${name}: ${reason}`, { field });
  if (PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) {
    // IHDR is the first chunk: width and height, big-endian, at bytes 16 and 20.
    if (bytes.length < 24) throw refuse('a truncated PNG');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const pixels = view.getUint32(16) * view.getUint32(20);
    if (pixels > MAX_IMAGE_PIXELS) throw refuse(`${view.getUint32(16)}x${view.getUint32(20)} pixels, more than ${MAX_IMAGE_PIXELS}`);
    try {
      // 16-bit PNGs come back scaled to 8 bits, palettes and grey expanded to RGBA.
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    } catch (error) {
      throw refuse(`not a readable PNG (${(error as Error).message.slice(0, 120)})`);
    }
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    try {
      const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
      return { width: image.width, height: image.height, data: image.data };
    } catch (error) {
      throw refuse(`not a readable JPEG (${(error as Error).message.slice(0, 120)})`);
    }
  }
  throw refuse('neither a PNG nor a JPEG (by its first bytes)');
}

/** Whether a file name is one the images dataset reads. */
export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return !lower.startsWith('.') && IMAGE_EXTENSIONS.some((extension) => lower.endsWith(extension));
}
