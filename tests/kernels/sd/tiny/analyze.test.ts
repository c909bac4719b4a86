// The image analyzer that scores generated samples: shape class, shape colour and background on
// clean renders, on renders spoilt like sampled images, at any rotation and size, and "none".
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../../kernels/random';
import { analyzeImage } from '../../../../kernels/sd/tiny/analyze';
import { ALL_SHAPES, PALETTE, renderScene, sampleScene, type Scene } from '../../../../kernels/sd/tiny/world';
import { degrade, type Damage } from './degrade';

function accuracy(count: number, seed: number, damage: Damage | null) {
  const rng = new Rng(seed);
  let shape = 0;
  let color = 0;
  let background = 0;
  for (let i = 0; i < count; i++) {
    const scene = sampleScene(rng, { shapes: ALL_SHAPES });
    let image = renderScene(scene, 64);
    if (damage) image = degrade(image, 64, damage, seed * 1000 + i);
    const found = analyzeImage(image, 64);
    if (found.shape === scene.shape) shape++;
    if (found.color === scene.color) color++;
    if (found.background === scene.background) background++;
  }
  return { shape: shape / count, color: color / count, background: background / count };
}

function flat(rgb: readonly number[], side = 64): Uint8Array {
  const image = new Uint8Array(side * side * 3);
  for (let p = 0; p < side * side; p++) image.set(rgb, p * 3);
  return image;
}

describe('analyzeImage', () => {
  it('reads at least 98% of clean renders right', () => {
    const score = accuracy(300, 1, null);
    expect(score.shape).toBeGreaterThanOrEqual(0.98);
    expect(score.color).toBeGreaterThanOrEqual(0.98);
    expect(score.background).toBeGreaterThanOrEqual(0.98);
  });

  it('reads at least 90% right under blur, noise and a colour shift', () => {
    const score = accuracy(300, 2, { blurSigma: 1.2, noiseSigma: 15, colorShift: 15 });
    expect(score.shape).toBeGreaterThanOrEqual(0.9);
    expect(score.color).toBeGreaterThanOrEqual(0.9);
    expect(score.background).toBeGreaterThanOrEqual(0.9);
  });

  it('reads shapes on an unevenly lit background', () => {
    const score = accuracy(100, 5, { blurSigma: 1.2, noiseSigma: 15, colorShift: 15, gradient: 60 });
    expect(score.shape).toBeGreaterThanOrEqual(0.9);
    expect(score.color).toBeGreaterThanOrEqual(0.9);
    expect(score.background).toBeGreaterThanOrEqual(0.9);
  });

  it('still reads most shapes under heavy damage', () => {
    const score = accuracy(100, 3, { blurSigma: 2.5, noiseSigma: 30, colorShift: 25 });
    expect(score.shape).toBeGreaterThanOrEqual(0.8);
  });

  it('does not depend on rotation', () => {
    for (const shape of ['square', 'triangle', 'star'] as const) {
      for (const rotation of [0.4, 0.785, 1.3, 2.5]) {
        const scene: Scene = { shape, color: 'white', background: 'purple', cx: 0.5, cy: 0.5, size: 0.36, rotation };
        expect(analyzeImage(renderScene(scene, 64), 64).shape).toBe(shape);
      }
    }
  });

  it('works at other image sizes', () => {
    const rng = new Rng(4);
    for (let i = 0; i < 12; i++) {
      const scene = sampleScene(rng, { shapes: ALL_SHAPES });
      const found = analyzeImage(renderScene(scene, 128), 128);
      expect([found.shape, found.color, found.background]).toEqual([scene.shape, scene.color, scene.background]);
    }
  });

  it('reports a measured colour close to the drawn one', () => {
    const scene: Scene = { shape: 'circle', color: 'green', background: 'black', cx: 0.4, cy: 0.6, size: 0.25, rotation: 0 };
    const found = analyzeImage(renderScene(scene, 64), 64);
    const [r, g, b] = found.foregroundRgb!;
    const [er, eg, eb] = PALETTE.green;
    expect(Math.hypot(r - er, g - eg, b - eb)).toBeLessThan(3);
    expect(found.features!.areaFraction).toBeCloseTo(Math.PI * 0.25 ** 2, 2);
  });

  it('says "none" for a flat image, naming its background', () => {
    const found = analyzeImage(flat(PALETTE.orange), 64);
    expect(found).toMatchObject({ shape: 'none', color: null, background: 'orange', features: null });
  });

  it('says "none" for a flat image with noise', () => {
    const found = analyzeImage(degrade(flat(PALETTE.blue), 64, { blurSigma: 0.5, noiseSigma: 20, colorShift: 10 }, 9), 64);
    expect(found.shape).toBe('none');
    expect(found.background).toBe('blue');
  });

  it('says "none" for a speck too small to be a shape', () => {
    const image = flat(PALETTE.white);
    for (let y = 30; y < 33; y++) for (let x = 30; x < 33; x++) image.set(PALETTE.red, (y * 64 + x) * 3);
    expect(analyzeImage(image, 64).shape).toBe('none');
  });

  it('rejects a buffer of the wrong length', () => {
    expect(() => analyzeImage(new Uint8Array(10), 64)).toThrow(/expected 64×64×3 = 12288 bytes, got 10/);
  });
});
