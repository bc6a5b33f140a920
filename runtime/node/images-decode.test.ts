import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { decodeImage, isImageFile, MAX_IMAGE_PIXELS } from './images-decode.ts';

/** A seeded-looking RGBA test card: a gradient in red and green, blue by quadrant. */
function card(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++)
      data.set([(x * 255) / (width - 1), (y * 255) / (height - 1), x < width / 2 === y < height / 2 ? 200 : 40, 255], (y * width + x) * 4);
  }
  return data;
}

describe('decodeImage', () => {
  it('reads a PNG to its exact RGBA bytes', () => {
    const png = new PNG({ width: 6, height: 4 });
    png.data.set(card(6, 4));
    const decoded = decodeImage(PNG.sync.write(png), 'card.png');
    expect([decoded.width, decoded.height]).toEqual([6, 4]);
    expect(Array.from(decoded.data)).toEqual(Array.from(card(6, 4)));
  });

  it('reads a greyscale PNG as RGBA with equal channels', () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data.set([10, 10, 10, 255, 200, 200, 200, 255]);
    const decoded = decodeImage(PNG.sync.write(png, { colorType: 0 }), 'grey.png');
    expect(Array.from(decoded.data)).toEqual([10, 10, 10, 255, 200, 200, 200, 255]);
  });

  it('reads a JPEG to RGBA within its compression error, whatever the file is called', () => {
    const source = card(16, 16);
    const bytes = jpeg.encode({ width: 16, height: 16, data: source }, 95).data;
    const decoded = decodeImage(new Uint8Array(bytes), 'called-a.png');
    expect([decoded.width, decoded.height]).toEqual([16, 16]);
    let worst = 0;
    for (let i = 0; i < source.length; i++) if (i % 4 !== 3) worst = Math.max(worst, Math.abs(decoded.data[i] - source[i]));
    expect(worst).toBeLessThan(40);
    expect(decoded.data[3]).toBe(255);
  });

  it('refuses what is neither, a broken file, and a header claiming more than the pixel budget, naming the file', () => {
    const refusal = (bytes: Uint8Array) => {
      try {
        decodeImage(bytes, 'x.png');
      } catch (error) {
        return error as { code: string; field: string; message: string };
      }
      throw new Error('expected a refusal');
    };
    expect(refusal(new TextEncoder().encode('GIF89a....'))).toMatchObject({
      code: 'INVALID_CONFIG',
      field: 'dataset.path',
      message: expect.stringMatching(/^x\.png: neither/),
    });
    const png = PNG.sync.write(new PNG({ width: 4, height: 4 }));
    expect(refusal(png.subarray(0, 40)).message).toMatch(/not a readable PNG/);
    // The IHDR of a 100,000 x 100,000 image: refused before anything is inflated.
    const huge = Uint8Array.from(png);
    new DataView(huge.buffer).setUint32(16, 100_000);
    new DataView(huge.buffer).setUint32(20, 100_000);
    expect(refusal(huge).message).toMatch(new RegExp(`100000x100000 pixels, more than ${MAX_IMAGE_PIXELS}`));
    expect(refusal(Uint8Array.of(0xff, 0xd8, 0xff, 0x00)).message).toMatch(/not a readable JPEG/);
  });
});

describe('isImageFile', () => {
  it('takes .png, .jpg and .jpeg in any case, and no hidden or other file', () => {
    expect(['a.png', 'b.JPG', 'c.jpeg', 'd.Png'].every(isImageFile)).toBe(true);
    expect(['.hidden.png', 'notes.txt', 'image.gif', 'png'].some(isImageFile)).toBe(false);
  });
});
