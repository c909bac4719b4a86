// SDXL micro-conditioning as kohya records it: original size, kohya's crop box (the image fitted inside
// the bucket, centred) and the bucket as target; a horizontal flip mirrors the crop's left edge.
import { describe, it, expect } from 'vitest';
import { kohyaCropLtrb, sampleGeometry } from '../../../nodes/data/geometry';

describe('sample geometry', () => {
  it('a landscape image in a wider-than-tall bucket: crop top from the fitted height, left 0', () => {
    // bucket 1.625 < image 1.667: width fits (832), height 832 / 1.667 = 499.2 → top (512 − 499.2) // 2 = 6.
    const [l, t, r, b] = kohyaCropLtrb({ width: 832, height: 512 }, { width: 1000, height: 600 });
    expect([l, t, r]).toEqual([0, 6, 832]);
    expect(b).toBeCloseTo(505.2, 6);
    const g = sampleGeometry({ size: { width: 1000, height: 600 }, bucket: { width: 832, height: 512 } }, { flipX: false, flipY: false });
    expect(g).toEqual({ originalSize: { width: 1000, height: 600 }, cropTopLeft: { top: 6, left: 0 }, targetSize: { width: 832, height: 512 } });
  });

  it('a portrait image: left from the fitted width; flipped, left = bucket width − crop right (truncated)', () => {
    // bucket 0.615 > image 0.6: height fits (832), width 499.2 → left (512 − 499.2) // 2 = 6, right 505.2.
    const item = { size: { width: 600, height: 1000 }, bucket: { width: 512, height: 832 } };
    expect(sampleGeometry(item, { flipX: false, flipY: false }).cropTopLeft).toEqual({ top: 0, left: 6 });
    expect(sampleGeometry(item, { flipX: true, flipY: false }).cropTopLeft).toEqual({ top: 0, left: 6 }); // 512 − 505.2 = 6.8 → 6
    // Where the mirror differs: a 60×100 image in a 64×64 bucket is fitted 38.4 wide → left 12, right 50.4.
    const wide = { size: { width: 60, height: 100 }, bucket: { width: 64, height: 64 } };
    expect(sampleGeometry(wide, { flipX: false, flipY: false }).cropTopLeft).toEqual({ top: 0, left: 12 }); // (64 − 38.4) // 2
    expect(sampleGeometry(wide, { flipX: true, flipY: false }).cropTopLeft).toEqual({ top: 0, left: 13 }); // 64 − 50.4 = 13.6 → 13
  });
});
