// Caption processing per draw: trigger substitution, dropout rates, keep-tokens, shuffling.
import { describe, expect, it } from 'vitest';
import { type CaptionSettings, applyTrigger, captionVariesPerDraw, defaultCaptionSettings, processCaption } from '../../../nodes/data/captions';
import { Rng } from '../../../kernels/random';

const settings = (over: Partial<CaptionSettings>): CaptionSettings => ({ ...defaultCaptionSettings, ...over });

describe('trigger word', () => {
  it('replaces [trigger] in place and does not add it again', () => {
    const s = settings({ triggerWord: 'sks' });
    expect(processCaption('a photo of [trigger] dog, grass', s, new Rng(1))).toBe('a photo of sks dog, grass');
    expect(applyTrigger('[Trigger], red', s)).toBe('sks, red');
  });

  it('prepends the trigger when the caption lacks it', () => {
    const s = settings({ triggerWord: 'sks' });
    expect(processCaption('a dog, grass', s, new Rng(1))).toBe('sks, a dog, grass');
    expect(processCaption('', s, new Rng(1))).toBe('sks');
  });

  it('matches the trigger as a whole word only', () => {
    const s = settings({ triggerWord: 'sks' });
    expect(processCaption('sks dog', s, new Rng(1))).toBe('sks dog');
    expect(processCaption('sksx dog', s, new Rng(1))).toBe('sks, sksx dog');
  });

  it('does not prepend the trigger for regularization data', () => {
    const s = settings({ triggerWord: 'sks', isRegularization: true });
    expect(processCaption('a dog', s, new Rng(1))).toBe('a dog');
  });

  it('keeps a prepended trigger first and never drops it, even with shuffling and tag dropout', () => {
    const s = settings({ triggerWord: 'sks', shuffleTags: true, tokenDropoutRate: 0.9 });
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) expect(processCaption('a, b, c, d', s, rng).split(', ')[0]).toBe('sks');
  });
});

describe('dropout rates', () => {
  it('drops whole captions at the configured rate', () => {
    const s = settings({ captionDropoutRate: 0.2, triggerWord: 'sks' });
    const rng = new Rng(42);
    const n = 20_000;
    let empty = 0;
    for (let i = 0; i < n; i++) if (processCaption('a, b, c', s, rng) === '') empty++;
    // Binomial standard deviation is sqrt(0.2*0.8/n) ≈ 0.0028; allow about 4 sigma.
    expect(Math.abs(empty / n - 0.2)).toBeLessThan(0.012);
  });

  it('drops each tag after the kept ones at the configured rate', () => {
    const s = settings({ tokenDropoutRate: 0.3, keepTokens: 1 });
    const rng = new Rng(7);
    const n = 5_000;
    let seen = 0;
    for (let i = 0; i < n; i++) {
      const tags = processCaption('keep, t1, t2, t3, t4', s, rng).split(', ');
      expect(tags[0]).toBe('keep');
      seen += tags.length - 1;
    }
    expect(Math.abs(1 - seen / (4 * n) - 0.3)).toBeLessThan(0.015);
  });

  it('never drops anything at rate 0', () => {
    const s = settings({});
    const rng = new Rng(9);
    for (let i = 0; i < 100; i++) expect(processCaption('a, b, c', s, rng)).toBe('a, b, c');
  });
});

describe('shuffling with keepTokens', () => {
  it('keeps the first N tags in place and permutes the rest', () => {
    const s = settings({ shuffleTags: true, keepTokens: 2 });
    const rng = new Rng(11);
    const orders = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const tags = processCaption('first, second, x, y, z', s, rng).split(', ');
      expect(tags.slice(0, 2)).toEqual(['first', 'second']);
      expect([...tags.slice(2)].sort()).toEqual(['x', 'y', 'z']);
      orders.add(tags.slice(2).join());
    }
    expect(orders.size).toBe(6); // all 3! orders appear
  });

  it('is deterministic for the same seed', () => {
    const s = settings({ shuffleTags: true, tokenDropoutRate: 0.2, captionDropoutRate: 0.1 });
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 20 }, () => processCaption('a, b, c, d, e, f', s, rng));
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });

  it('splits on a custom separator and joins back with it', () => {
    const s = settings({ separator: '|', triggerWord: 'tok' });
    expect(processCaption('a|b |c', s, new Rng(1))).toBe('tok| a| b| c');
  });
});

describe('text-embedding caching', () => {
  it('names the settings that make captions vary per draw', () => {
    expect(captionVariesPerDraw(settings({ captionDropoutRate: 0.1 }))).toEqual([]);
    expect(captionVariesPerDraw(settings({ shuffleTags: true, tokenDropoutRate: 0.1 }))).toEqual(['shuffleTags', 'tokenDropoutRate']);
  });
});
