// Smoke test of `pretrain:tiny-wan`: a 3-step run writes the five files a user would have, wanFamily
// loads them as the tiny Wan 2.2 I2V pair of experts (sizes from the tensors, heads, text length and
// latent statistics from the metadata), and eval:tiny-wan samples a clip through them; stage D starts from
// stage C's weights.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wanFamily } from '../../../../kernels/wan/family';
import { CLIP_ATTRIBUTE_COUNT, CLIP_ATTRIBUTE_GROUPS, TINY_WAN_DEFAULTS, clipCaptionAttributes, pretrainTinyWan, parseArgs, stageKey } from '../../../../kernels/wan/tiny/pretrain';
import { TINY_WAN_DIT, TINY_WAN_FILES, TINY_WAN_TEXT_LEN, TINY_WAN_VAE_BASE } from '../../../../kernels/wan/tiny/model';
import { evaluateTinyWan, x0Diagnostic } from '../../../../kernels/wan/tiny/eval';
import { vaeRoundTrip } from '../../../../kernels/wan/tiny/vae-eval';
import { loadTrainState } from '../../../../kernels/train/pretrain-cli';
import { Runtime } from '../../../../kernels/runtime';
import { COLOR_NAMES, WORLD_SHAPES } from '../../../../kernels/sd/tiny/world';
import { DIRECTIONS } from '../../../../kernels/wan/tiny/world';
import { float16ToFloat32, float32ToFloat16 } from '../../../../kernels/io/dtypes';

const root = mkdtempSync(join(tmpdir(), 'tiny-wan-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('pretrain:tiny-wan', () => {
  it('a 3-step run writes files that wanFamily loads as the two tiny experts, and the eval samples through them', async () => {
    const out = join(root, 'out');
    // Stage D's two cycles at learning rate 0: the experts' files must then hold stage C's weights exactly
    // (cycle 1 starts from them, cycle 2 from cycle 1's).
    const o = { ...TINY_WAN_DEFAULTS, vaeSteps: 3, vaeBatch: 1, vaeFrames: 5, vaeCrop: 16, cacheSize: 8, ditSteps: 3, growSteps: 2, polishSteps: [2, 2], polishLr: 0, ditBatch: 2, vaeCheckClips: 8, threads: 2 };
    const lines: string[] = [];
    await pretrainTinyWan(o, out, join(root, 'scratch'), (l) => lines.push(l));
    expect(readdirSync(out).sort()).toEqual(Object.values(TINY_WAN_FILES).sort());
    expect(lines.some((l) => /stage A round trip of 8 world clips: MSE \d.*read as shape \d+%, colour \d+%, background \d+%, direction \d+%/.test(l))).toBe(true);
    expect(lines.some((l) => /stage B step 3\/3 flow loss \d.* attribute loss \d/.test(l))).toBe(true);
    expect(lines).toContain(`stage C: ${TINY_WAN_DIT.numLayers} blocks grown to ${TINY_WAN_DIT.numLayers + o.growBlocks}`);
    expect(lines.some((l) => /stage C step 2\/2 flow loss \d/.test(l))).toBe(true);
    expect(lines.some((l) => /stage D step 2\/2 flow loss \d/.test(l))).toBe(true);
    expect(lines.some((l) => /stage D cycle 2 step 2\/2 flow loss \d/.test(l))).toBe(true);
    const grown = (await loadTrainState(join(root, 'scratch', `grown-${stageKey(o, 'grow')}.safetensors`)))!.tensors;
    for (const [name, t] of Object.entries((await loadTrainState(join(out, TINY_WAN_FILES.high)))!.tensors)) {
      expect(t.data, name).toEqual(float16ToFloat32(float32ToFloat16(grown[`transformer/${name}`].data as Float32Array)));
    }
    // The posterior starts narrow (log-variance vaeInitLogVar), and 3 steps of Adam move it by little.
    const vae = (await loadTrainState(join(root, 'scratch', `vae-${stageKey(o, 'vae')}.safetensors`)))!.tensors;
    const logVarBias = Array.from(vae['conv1.bias'].data as Float32Array).slice(TINY_WAN_VAE_BASE.zDim);
    expect(Math.max(...logVarBias)).toBeLessThan(TINY_WAN_DEFAULTS.vaeInitLogVar + 0.1);
    // The round-trip measure reads clean renders right; a 3-step VAE's round trip is far from them.
    const rt = new Runtime({ threads: 2 });
    try {
      const r = await vaeRoundTrip(rt, vae, TINY_WAN_VAE_BASE, { clips: 2, frames: 9, seed: 3, batch: 2 });
      expect(r.clean).toEqual({ shape: 1, color: 1, background: 1, direction: 1 });
      expect(r.frameMse).toHaveLength(9);
      expect(r.mse).toBeGreaterThan(0.01);
    } finally {
      await rt.close();
    }

    const m = await wanFamily.load(join(out, TINY_WAN_FILES.high));
    try {
      expect(m.config.transformer).toMatchObject({ dim: TINY_WAN_DIT.dim, numHeads: TINY_WAN_DIT.numHeads, numLayers: TINY_WAN_DIT.numLayers + o.growBlocks, inChannels: 36, outChannels: 16, textDim: 32 });
      expect(m.config.experts).toEqual({ boundary: 0.9, active: 'high_noise' });
      expect(m.expertFiles?.low_noise).toBe(join(out, TINY_WAN_FILES.low));
      expect(m.config.textLength).toBe(TINY_WAN_TEXT_LEN);
      expect(m.config.vae).toMatchObject({ base: TINY_WAN_VAE_BASE.base, zDim: 16, dimMult: TINY_WAN_VAE_BASE.dimMult, temporalDownsample: TINY_WAN_VAE_BASE.temporalDownsample });
      // The latent statistics measured on the cache, not the placeholders.
      expect(m.config.vae.latentStd.some((s) => s !== 1)).toBe(true);
      expect(m.dtypes).toContain('F16');
    } finally {
      m.close();
    }

    const r = await evaluateTinyWan({ dir: out, samples: 1, steps: 2, cfgScale: 5, frames: 9, seed: 1, prompts: 1, threads: 2 });
    expect(r.clips).toBe(1);
    expect(r.firstFrames[0].length).toBe(64 * 64 * 3);
    const x0 = await x0Diagnostic({ dir: out, samples: 1, steps: 1, cfgScale: 5, frames: 9, seed: 1, prompts: 1, threads: 2, sigmas: [0.5] });
    expect(Object.keys(x0)).toEqual(['0.5']);
  }, 240_000);

  it('names shape, colour, background and direction of a caption, one-hot per group, for the attribute head', () => {
    const a = clipCaptionAttributes('an orange triangle moving up on a white background')!;
    expect(a).toHaveLength(CLIP_ATTRIBUTE_COUNT);
    const named = CLIP_ATTRIBUTE_GROUPS.map(([at, n]) => {
      const group = Array.from(a.subarray(at, at + n));
      expect(group.reduce((x, y) => x + y, 0)).toBe(1);
      return group.indexOf(1);
    });
    expect(named).toEqual([WORLD_SHAPES.indexOf('triangle'), COLOR_NAMES.indexOf('orange'), COLOR_NAMES.indexOf('white'), DIRECTIONS.indexOf('up')]);
    expect(clipCaptionAttributes('')).toBeUndefined();
    // Stars are the quickstart's concept: the pretraining never names them.
    expect(() => clipCaptionAttributes('a red star moving left on a blue background')).toThrow(/not a caption of the moving-shapes world/);
  });

  it('names stage files after the options they depend on', () => {
    const o = TINY_WAN_DEFAULTS;
    expect(stageKey({ ...o, ditSteps: 1 }, 'vae')).toBe(stageKey(o, 'vae'));
    expect(stageKey({ ...o, ditSteps: 1 }, 'dit')).not.toBe(stageKey(o, 'dit'));
    expect(stageKey({ ...o, vaeSteps: 1 }, 'vae')).not.toBe(stageKey(o, 'vae'));
    expect(stageKey({ ...o, vaeSteps: 1 }, 'dit')).not.toBe(stageKey(o, 'dit'));
    expect(stageKey({ ...o, threads: 1, saveEvery: 7 }, 'dit')).toBe(stageKey(o, 'dit'));
    // Stage C's options name only its own files: the stage-B model is reused when they change.
    expect(stageKey({ ...o, growSteps: 1 }, 'dit')).toBe(stageKey(o, 'dit'));
    expect(stageKey({ ...o, growSteps: 1 }, 'grow')).not.toBe(stageKey(o, 'grow'));
    expect(stageKey({ ...o, ditSteps: 1 }, 'grow')).not.toBe(stageKey(o, 'grow'));
    // Stage D's likewise: the grown model is reused when they change.
    expect(stageKey({ ...o, polishSteps: [1] }, 'grow')).toBe(stageKey(o, 'grow'));
    expect(stageKey({ ...o, polishSteps: [1] }, 'polish')).not.toBe(stageKey(o, 'polish'));
    expect(stageKey({ ...o, growSteps: 1 }, 'polish')).not.toBe(stageKey(o, 'polish'));
    // A cycle's files depend on it and the cycles before it: adding or changing a later cycle, or the decay
    // (which cycle 1 does not use), keeps the earlier cycles' files.
    const two = { ...o, polishSteps: [2000, 2000] };
    expect(stageKey(two, 'polish', 2)).not.toBe(stageKey(two, 'polish', 1));
    expect(stageKey(two, 'polish', 1)).toBe(stageKey({ ...o, polishSteps: [2000] }, 'polish', 1));
    expect(stageKey({ ...two, polishSteps: [2000, 1] }, 'polish', 1)).toBe(stageKey(two, 'polish', 1));
    expect(stageKey({ ...two, polishSteps: [2000, 1] }, 'polish', 2)).not.toBe(stageKey(two, 'polish', 2));
    expect(stageKey({ ...two, polishDecay: 0.1 }, 'polish', 1)).toBe(stageKey(two, 'polish', 1));
    expect(stageKey({ ...two, polishDecay: 0.1 }, 'polish', 2)).not.toBe(stageKey(two, 'polish', 2));
    expect(stageKey({ ...two, polishSteps: [1, 2000] }, 'polish', 2)).not.toBe(stageKey(two, 'polish', 2));
  });

  it('reads its options from the command line and refuses unknown ones', () => {
    expect(parseArgs(['--dit-steps', '7', '--out', '/tmp/x']).o.ditSteps).toBe(7);
    expect(() => parseArgs(['--dit-stepz', '7'])).toThrow(/unknown option --dit-stepz/);
    expect(() => parseArgs(['--dit-steps'])).toThrow(/needs a value/);
  });
});
