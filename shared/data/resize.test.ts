import { describe, expect, it } from 'vitest';
import { axisTaps, centreCrop, fromBytes, resizeImage, toBytes, type RgbaImage } from './resize.ts';

/** An RGBA image from a function of (x, y) giving [r, g, b, a] bytes. */
function image(width: number, height: number, pixel: (x: number, y: number) => number[]): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  return { width, height, data };
}

describe('axisTaps', () => {
  it('keeps a same-size axis as it is', () => {
    expect(axisTaps(4, 4).map(({ start, weights }) => [start, ...weights])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
  });

  it('averages footprints when shrinking, weighting partly covered pixels by their cover', () => {
    expect(axisTaps(4, 2).map(({ start, weights }) => [start, ...weights])).toEqual([
      [0, 0.5, 0.5],
      [2, 0.5, 0.5],
    ]);
    // 3 -> 2: each output covers 1.5 source pixels.
    const taps = axisTaps(3, 2);
    expect(taps[0].start).toBe(0);
    expect(Array.from(taps[0].weights)).toEqual([2 / 3, 1 / 3]);
    expect(taps[1].start).toBe(1);
    expect(Array.from(taps[1].weights)).toEqual([1 / 3, 2 / 3]);
    for (const { weights } of axisTaps(97, 32)) expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('interpolates linearly between source centres when growing, clamped at the edges', () => {
    const taps = axisTaps(2, 4).map(({ start, weights }) => [start, ...weights]);
    // Output centres at source coordinates -0.25, 0.25, 0.75, 1.25.
    expect(taps).toEqual([
      [0, 1, 0],
      [0, 0.75, 0.25],
      [0, 0.25, 0.75],
      [0, 0, 1],
    ]);
    expect(axisTaps(1, 3).every(({ start, weights }) => start === 0 && weights.length === 1 && weights[0] === 1)).toBe(true);
  });
});

describe('centreCrop', () => {
  it("takes the largest centred window of the target's aspect ratio", () => {
    expect(centreCrop(200, 100, 32, 32)).toEqual({ x: 50, y: 0, width: 100, height: 100 });
    expect(centreCrop(100, 300, 32, 32)).toEqual({ x: 0, y: 100, width: 100, height: 100 });
    expect(centreCrop(64, 64, 32, 32)).toEqual({ x: 0, y: 0, width: 64, height: 64 });
  });
});

describe('resizeImage', () => {
  it('halves an image as the mean of each 2x2 block, channel by channel', () => {
    const source = image(4, 4, (x, y) => [x * 60, y * 60, 255 - x * 10, 255]);
    const result = resizeImage(source, [2, 2, 3]);
    // Output (0, 0) averages x, y in {0, 1}: red (0 + 60) / 2, green likewise, blue 255 - 5.
    expect(Array.from(result.subarray(0, 3)).map((value) => value * 255)).toEqual([30, 30, 250].map((value) => expect.closeTo(value, 4)));
    expect(result[(1 * 2 + 1) * 3] * 255).toBeCloseTo(150, 4);
  });

  it('turns colour into grey by luma, and transparent pixels black', () => {
    const result = resizeImage(
      image(2, 1, (x) => (x === 0 ? [255, 0, 0, 255] : [255, 255, 255, 0])),
      [1, 2, 1],
    );
    expect(result[0]).toBeCloseTo(0.299, 6);
    expect(result[1]).toBe(0);
  });

  it('crops a wide image to its centre rather than squeezing it', () => {
    // Left and right thirds red, the centre third green: the square crop keeps only green.
    const wide = image(9, 3, (x) => (x >= 3 && x < 6 ? [0, 255, 0, 255] : [255, 0, 0, 255]));
    const result = resizeImage(wide, [3, 3, 3]);
    for (let p = 0; p < 9; p++) expect(Array.from(result.subarray(p * 3, p * 3 + 3))).toEqual([0, 1, 0]);
  });

  it('grows a small image smoothly, within the range of its pixels', () => {
    const result = resizeImage(
      image(2, 2, (x, y) => [(x + y) * 100, 0, 0, 255]),
      [8, 8, 1],
    );
    expect(result.length).toBe(64);
    expect(Math.min(...result)).toBeCloseTo(0, 6);
    expect(Math.max(...result)).toBeCloseTo((200 / 255) * 0.299, 6);
    // Monotone along a row.
    for (let x = 1; x < 8; x++) expect(result[x]).toBeGreaterThanOrEqual(result[x - 1]);
  });

  it('refuses channels other than 1 or 3, and data that is not its size', () => {
    expect(() =>
      resizeImage(
        image(2, 2, () => [0, 0, 0, 255]),
        [2, 2, 4],
      ),
    ).toThrow(/1 or 3 channels/);
    expect(() => resizeImage({ width: 2, height: 2, data: new Uint8Array(15) }, [2, 2, 3])).toThrow(/15 bytes for a 2x2/);
  });
});

describe('toBytes and fromBytes', () => {
  it('round-trip every byte exactly, so every process reads the same float32 pixels', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(toBytes(fromBytes(bytes))).toEqual(bytes);
    expect(Array.from(toBytes(Float32Array.of(-0.5, 0.5, 1.5)))).toEqual([0, 128, 255]);
  });
});
