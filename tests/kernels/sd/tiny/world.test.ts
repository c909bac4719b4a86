// The procedural shape world: determinism from a seed, sensible scenes, captions, and a rasteriser
// whose anti-aliased coverage matches each shape's exact area.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../../kernels/random';
import {
  ALL_SHAPES,
  PALETTE,
  STAR_INNER_RATIO,
  WORLD_SHAPES,
  captionOf,
  parseCaption,
  renderScene,
  sampleScene,
  type Scene,
  type ShapeName,
} from '../../../../kernels/sd/tiny/world';

// Per-pixel share of the shape colour, read back from the rendered bytes.
function coverageOf(image: Uint8Array, scene: Scene): number[] {
  const fg = PALETTE[scene.color];
  const bg = PALETTE[scene.background];
  const channel = [0, 1, 2].reduce((best, c) => (Math.abs(fg[c] - bg[c]) > Math.abs(fg[best] - bg[best]) ? c : best), 0);
  const out: number[] = [];
  for (let p = 0; p < image.length / 3; p++) out.push((image[p * 3 + channel] - bg[channel]) / (fg[channel] - bg[channel]));
  return out;
}

function exactArea(shape: ShapeName, radius: number): number {
  switch (shape) {
    case 'circle':
      return Math.PI * radius ** 2;
    case 'square':
      return 2 * radius ** 2;
    case 'triangle':
      return ((3 * Math.sqrt(3)) / 4) * radius ** 2;
    case 'star':
      // Ten triangles between the centre and consecutive outer/inner points, 36° apart.
      return 5 * radius * (radius * STAR_INNER_RATIO) * Math.sin(Math.PI / 5);
  }
}

describe('sampleScene', () => {
  it('gives the same scene for the same seed and different scenes for different seeds', () => {
    expect(sampleScene(7)).toEqual(sampleScene(7));
    expect(sampleScene(new Rng(7))).toEqual(sampleScene(7));
    const distinct = new Set(Array.from({ length: 50 }, (_, i) => JSON.stringify(sampleScene(i))));
    expect(distinct.size).toBe(50);
  });

  it('keeps the shape off its background colour and inside the image', () => {
    const rng = new Rng(1);
    for (let i = 0; i < 300; i++) {
      const scene = sampleScene(rng, { shapes: ALL_SHAPES });
      expect(scene.color).not.toBe(scene.background);
      const image = renderScene(scene, 64);
      // The 2-pixel frame is pure background: nothing is clipped at the edge.
      const bg = PALETTE[scene.background];
      let touched = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          if (x >= 2 && y >= 2 && x < 62 && y < 62) continue;
          const o = (y * 64 + x) * 3;
          if (image[o] !== bg[0] || image[o + 1] !== bg[1] || image[o + 2] !== bg[2]) touched++;
        }
      }
      expect(touched).toBe(0);
    }
  });

  it('draws the pretraining shapes by default and the star only when asked', () => {
    const rng = new Rng(2);
    const seen = new Set(Array.from({ length: 200 }, () => sampleScene(rng).shape));
    expect([...seen].sort()).toEqual([...WORLD_SHAPES].sort());
    expect(sampleScene(3, { shapes: ['star'] }).shape).toBe('star');
  });

  it('refuses option lists that leave nothing to draw', () => {
    expect(() => sampleScene(1, { shapes: [] })).toThrow(/at least one/);
    expect(() => sampleScene(1, { colors: ['red'], backgrounds: ['red'] })).toThrow(/no background colour differs from red/);
  });
});

describe('captionOf', () => {
  const scene: Scene = { shape: 'circle', color: 'red', background: 'blue', cx: 0.5, cy: 0.5, size: 0.3, rotation: 0 };

  it('reads like the world captions', () => {
    expect(captionOf(scene)).toBe('a red circle on a blue background');
    expect(captionOf({ ...scene, color: 'orange', background: 'white' })).toBe('an orange circle on a white background');
    expect(captionOf({ ...scene, background: 'orange' })).toBe('a red circle on an orange background');
  });

  it('puts a trigger word in place of the shape', () => {
    expect(captionOf({ ...scene, shape: 'star' }, { shapeWord: '[trigger]' })).toBe('a red [trigger] on a blue background');
  });

  it('is read back by parseCaption', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 50; i++) {
      const s = sampleScene(rng, { shapes: ALL_SHAPES });
      expect(parseCaption(captionOf(s))).toEqual({ color: s.color, shapeWord: s.shape, shape: s.shape, background: s.background });
    }
    expect(parseCaption('An Orange  sks on a WHITE background')).toEqual({ color: 'orange', shapeWord: 'sks', shape: null, background: 'white' });
    expect(parseCaption('a photo of a cat')).toBeNull();
    expect(parseCaption('a pink circle on a blue background')).toBeNull();
  });
});

describe('renderScene', () => {
  it('is byte-identical for the same scene', () => {
    const scene = sampleScene(11, { shapes: ALL_SHAPES });
    expect(renderScene(scene, 64)).toEqual(renderScene(scene, 64));
  });

  for (const shape of ALL_SHAPES) {
    it(`covers the exact area of a ${shape}, centred where the scene says, at any size`, () => {
      for (const side of [64, 100]) {
        const scene: Scene = { shape, color: 'yellow', background: 'blue', cx: 0.52, cy: 0.47, size: 0.33, rotation: 0.2 };
        const coverage = coverageOf(renderScene(scene, side), scene);
        const area = coverage.reduce((a, b) => a + b, 0);
        expect(area / exactArea(shape, scene.size * side)).toBeCloseTo(1, 2);
        const mx = coverage.reduce((acc, c, p) => acc + c * ((p % side) + 0.5), 0) / area;
        const my = coverage.reduce((acc, c, p) => acc + c * (Math.floor(p / side) + 0.5), 0) / area;
        expect(Math.hypot(mx - scene.cx * side, my - scene.cy * side)).toBeLessThan(0.05);
      }
    });
  }

  it('anti-aliases edges with in-between colours', () => {
    const scene: Scene = { shape: 'circle', color: 'white', background: 'black', cx: 0.5, cy: 0.5, size: 0.3, rotation: 0 };
    const partial = coverageOf(renderScene(scene, 64), scene).filter((c) => c > 0.05 && c < 0.95);
    // Roughly one partly covered pixel per unit of perimeter.
    expect(partial.length).toBeGreaterThan(0.6 * 2 * Math.PI * 0.3 * 64);
  });

  it('rejects a non-integer size', () => {
    expect(() => renderScene(sampleScene(1), 0)).toThrow(/positive integer/);
  });
});
