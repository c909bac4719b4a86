// The moving-shapes world and its clip analyzer: clips stay inside the frame and move the captioned way;
// the analyzer reads shape, colour and direction of clean and spoilt renders, and calls a still shape still.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../../kernels/random';
import { ALL_SHAPES } from '../../../../kernels/sd/tiny/world';
import { analyzeClip } from '../../../../kernels/wan/tiny/analyze';
import { clipCaption, clipCentre, framesToPlanar, parseClipCaption, planarToFrames, renderClip, sampleClip, type Clip } from '../../../../kernels/wan/tiny/world';
import { degrade, type Damage } from '../../sd/tiny/degrade';

function score(count: number, seed: number, damage: Damage | null) {
  const rng = new Rng(seed);
  let shape = 0, color = 0, direction = 0;
  const misses: string[] = [];
  for (let i = 0; i < count; i++) {
    const clip = sampleClip(rng, { shapes: ALL_SHAPES });
    let frames = renderClip(clip, 64);
    if (damage) frames = frames.map((f, t) => degrade(f, 64, damage, seed * 1000 + i * 31 + t));
    const a = analyzeClip(frames, 64);
    if (a.shape === clip.shape) shape++;
    if (a.color === clip.color) color++;
    if (a.direction === clip.direction) direction++;
    else misses.push(`${clipCaption(clip)} → ${a.direction}`);
  }
  return { shape: shape / count, color: color / count, direction: direction / count, misses };
}

describe('moving-shapes world', () => {
  it('keeps the shape inside every frame and moves it a third of the side the captioned way', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const c = sampleClip(rng);
      expect([9, 13, 17]).toContain(c.frames);
      for (const t of [0, c.frames - 1]) {
        const [x, y] = clipCentre(c, t);
        for (const v of [x, y]) { expect(v - c.size).toBeGreaterThan(0); expect(v + c.size).toBeLessThan(1); }
      }
      const dx = c.end[0] - c.start[0], dy = c.end[1] - c.start[1];
      const expected = { left: [-1, 0], right: [1, 0], up: [0, -1], down: [0, 1] }[c.direction];
      expect(Math.sign(dx)).toBe(expected[0]);
      expect(Math.sign(dy)).toBe(expected[1]);
      expect(Math.hypot(dx, dy)).toBeGreaterThanOrEqual(0.3 - 1e-9);
      expect(c.background).not.toBe(c.color);
    }
  });

  it('captions a clip in words that parse back, and is the same clip from the same seed', () => {
    const c: Clip = sampleClip(7);
    expect(sampleClip(7)).toEqual(c);
    const caption = clipCaption({ shape: 'circle', color: 'orange', background: 'blue', direction: 'left' });
    expect(caption).toBe('an orange circle moving left on a blue background');
    expect(parseClipCaption(caption)).toEqual({ color: 'orange', shape: 'circle', shapeWord: 'circle', direction: 'left', background: 'blue' });
    expect(parseClipCaption('a red circle on a blue background')).toBeNull();
    const bounce = clipCaption({ shape: 'square', color: 'red', background: 'blue', direction: 'down', motion: 'bouncing' });
    expect(bounce).toBe('a red square bouncing on a blue background');
    expect(parseClipCaption(bounce)).toEqual({ color: 'red', shape: 'square', shapeWord: 'square', direction: 'down', background: 'blue', motion: 'bouncing' });
    expect(clipCaption(c, { shapeWord: 'sks' })).toContain(' sks moving ');
  });

  it('round-trips frames through the VAE layout [3, F, H, W] in [−1, 1]', () => {
    const frames = renderClip(sampleClip(11), 16);
    const planar = new Float32Array(3 * frames.length * 256 + 5);
    framesToPlanar(frames, 16, planar, 5);
    expect(planarToFrames(planar, frames.length, 16, 5)).toEqual(frames);
  });

  it('refuses options it cannot draw from', () => {
    expect(() => sampleClip(1, { directions: [] })).toThrow(/directions/);
    expect(() => sampleClip(1, { colors: ['red'], backgrounds: ['red'] })).toThrow(/background/);
  });
});

describe('analyzeClip', () => {
  it('reads ≥ 98% of clean clips right (shape, colour, direction)', () => {
    const s = score(60, 1, null);
    expect(s.shape).toBeGreaterThanOrEqual(0.98);
    expect(s.color).toBeGreaterThanOrEqual(0.98);
    expect(s.direction, s.misses.join('\n')).toBeGreaterThanOrEqual(0.98);
  });

  it('reads ≥ 90% right under blur, noise and a colour shift', () => {
    const s = score(40, 2, { blurSigma: 1, noiseSigma: 10, colorShift: 15 });
    expect(s.shape).toBeGreaterThanOrEqual(0.9);
    expect(s.color).toBeGreaterThanOrEqual(0.9);
    expect(s.direction, s.misses.join('\n')).toBeGreaterThanOrEqual(0.9);
  });

  it('calls a shape that stays put still, and an empty clip none', () => {
    const c = sampleClip(5);
    const still = renderClip({ ...c, end: c.start }, 64);
    expect(analyzeClip(still, 64).direction).toBe('still');
    const bg = new Uint8Array(64 * 64 * 3).fill(90);
    const empty = analyzeClip([bg, bg, bg], 64);
    expect(empty.shape).toBe('none');
    expect(empty.direction).toBe('none');
  });
});

describe('bouncing (the video quickstart\'s new motion)', () => {
  it('falls to the floor at mid-clip and rises back to the start, captioned "bouncing"', () => {
    const c = sampleClip(9, { motion: 'bouncing', frames: [9] });
    expect(clipCaption(c)).toMatch(/^an? \w+ \w+ bouncing on an? \w+ background$/);
    expect(clipCentre(c, 0)).toEqual(clipCentre(c, 8));
    expect(clipCentre(c, 4)[1] - clipCentre(c, 0)[1]).toBeGreaterThanOrEqual(0.3 - 1e-9);
  });

  it('the analyzer tells bounces from straight motion (clean and spoilt)', () => {
    const rng = new Rng(21);
    let bounces = 0, straight = 0;
    for (let i = 0; i < 30; i++) {
      const b = renderClip(sampleClip(rng, { motion: 'bouncing', frames: [9, 17] }), 64).map((f, t) => (i % 2 ? degrade(f, 64, { blurSigma: 1, noiseSigma: 10, colorShift: 15 }, i * 17 + t) : f));
      if (analyzeClip(b, 64).bounced) bounces++;
      if (!analyzeClip(renderClip(sampleClip(rng, { frames: [9, 17] }), 64), 64).bounced) straight++;
    }
    expect(bounces).toBeGreaterThanOrEqual(28);
    expect(straight).toBeGreaterThanOrEqual(29);
  });
});
