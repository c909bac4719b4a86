// Bucket assignment against hand-computed sizes, and the rule that images are never upscaled.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignBucket, bucketsForResolution, chooseResolution, validateBucketSettings } from '../../../nodes/data/buckets';

const at = (resolutions: number[], step = 64) => ({ resolutions, step });

describe('bucket sets', () => {
  it('builds kohya-style buckets for 512 with step 64', () => {
    const sizes = bucketsForResolution(512, 64).map((b) => `${b.width}x${b.height}`);
    expect(sizes).toEqual([
      '256x1024', '320x768', '384x640', '448x576', '512x512', '576x448', '640x384',
      '704x320', '768x320', '832x256', '896x256', '960x256', '1024x256',
    ]);
    for (const b of bucketsForResolution(1024, 8)) {
      expect(b.width * b.height).toBeLessThanOrEqual(1024 * 1024);
      expect(b.width % 8 + (b.height % 8)).toBe(0);
    }
  });

  it('rejects steps that are not multiples of 8 and resolutions off the step', () => {
    expect(() => validateBucketSettings(at([512], 60))).toThrow(/bucketStep/);
    expect(() => validateBucketSettings(at([500], 64))).toThrow(/resolution: 500/);
    expect(() => validateBucketSettings(at([512], 8))).not.toThrow();
  });
});

describe('bucket assignment', () => {
  it('matches hand-computed buckets', () => {
    expect(assignBucket({ width: 1024, height: 1024 }, at([512]))).toEqual({ width: 512, height: 512 });
    // 4:3 → 576x448 (ratio 1.286) is closer than 640x384 (1.667) or 512x512.
    expect(assignBucket({ width: 640, height: 480 }, at([512]))).toEqual({ width: 576, height: 448 });
    expect(assignBucket({ width: 1200, height: 1600 }, at([512]))).toEqual({ width: 448, height: 576 });
    // 16:9 at 1024: widths 1344 → h 768 (1.75) is the closest to 1.778.
    expect(assignBucket({ width: 1920, height: 1080 }, at([1024]))).toEqual({ width: 1344, height: 768 });
  });

  it('picks the resolution whose area is closest to the image', () => {
    expect(chooseResolution({ width: 600, height: 600 }, [512, 768, 1024])).toBe(512);
    expect(chooseResolution({ width: 800, height: 800 }, [512, 768, 1024])).toBe(768);
    expect(chooseResolution({ width: 4000, height: 3000 }, [512, 768, 1024])).toBe(1024);
    expect(assignBucket({ width: 800, height: 800 }, at([512, 768, 1024]))).toEqual({ width: 768, height: 768 });
  });

  it('puts a small image into a smaller bucket that fits it instead of upscaling', () => {
    expect(assignBucket({ width: 300, height: 300 }, at([512]))).toEqual({ width: 256, height: 256 });
    // 700² is closest to 768² but smaller: floor to the step → 640x640.
    expect(assignBucket({ width: 700, height: 700 }, at([512, 768, 1024]))).toEqual({ width: 640, height: 640 });
    expect(assignBucket({ width: 500, height: 200 }, at([512], 8))).toEqual({ width: 496, height: 200 });
    expect(assignBucket({ width: 64, height: 4097 }, at([512]))).toEqual({ width: 64, height: 4096 });
    expect(assignBucket({ width: 40, height: 300 }, at([512]))).toBeNull();
  });

  it('scales a very wide image down to the area limit when no bucket fits its shape', () => {
    // 2000x200: no bucket is that wide; scale by sqrt(512²/400000) → 1619x161 → 1600x128.
    expect(assignBucket({ width: 2000, height: 200 }, at([512]))).toEqual({ width: 1600, height: 128 });
  });

  it('never upscales, never exceeds the area, always lands on the step (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 64, max: 5000 }), fc.integer({ min: 64, max: 5000 }), fc.constantFrom(8, 16, 32, 64), fc.subarray([512, 768, 1024], { minLength: 1 }), (w, h, step, resolutions) => {
        const b = assignBucket({ width: w, height: h }, { resolutions, step });
        if (!b) return w < step || h < step;
        const r = chooseResolution({ width: w, height: h }, resolutions);
        return b.width <= w && b.height <= h && b.width * b.height <= r * r && b.width % step === 0 && b.height % step === 0;
      }),
      { numRuns: 2000 },
    );
  });
});
