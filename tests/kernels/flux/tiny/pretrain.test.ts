// The tiny klein pretraining skeleton end to end at a few steps: its tokenizer fits every world caption
// in the encoder's 64 tokens with <|endoftext|> at 507, and the files it writes load through
// flux2Family.load (found side by side, as in a ComfyUI models folder), denoise, and go through eval:tiny-flux;
// stage D starts from stage C's weights.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../../kernels';
import { pretrainTinyFlux, tinyFluxPretrainConfig, tinyFluxTokenizerJson, TINY_FLUX_DEFAULTS, TINY_FLUX_FILES } from '../../../../kernels/flux/tiny/pretrain';
import { Qwen3PromptTokenizer, qwen3ChatText } from '../../../../kernels/flux/qwen3-tokenizer';
import { flux2Family, tinyFlux2Config } from '../../../../kernels/flux/family';
import { worldCaptions } from '../../../../kernels/sd/tiny/build-assets';
import { evaluateTinyFlux } from '../../../../kernels/flux/tiny/eval';
import { loadTrainState } from '../../../../kernels/train/pretrain-cli';
import { loadSafetensors, toFloat32 } from '../../../../kernels/io/safetensors';
import { float16ToFloat32, float32ToFloat16 } from '../../../../kernels/io/dtypes';

describe('tiny klein pretraining (skeleton)', () => {
  it('tokenizer: <|endoftext|> at 507, every world caption round trips within 64 tokens', () => {
    const c = tinyFlux2Config();
    const tok = new Qwen3PromptTokenizer(tinyFluxTokenizerJson(TINY_FLUX_DEFAULTS.merges), {}, c.text.maxLength);
    expect(tok.padId).toBe(c.padId);
    expect(tok.vocabSize).toBeLessThanOrEqual(c.text.vocabSize);
    let longest = 0;
    for (const caption of [...worldCaptions(), '']) {
      const ids = tok.promptIds(caption);
      longest = Math.max(longest, ids.length);
      expect(tok.decode(ids)).toBe(qwen3ChatText(caption));
    }
    expect(longest).toBeLessThanOrEqual(c.text.maxLength);
  });

  it('a few steps of every stage write files that load and denoise', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tiny-flux-out-'));
    const scratch = mkdtempSync(join(tmpdir(), 'tiny-flux-scratch-'));
    const lines: string[] = [];
    // Stage D's two cycles at learning rate 0: the files must then hold stage C's weights exactly (cycle 1
    // starts from them, cycle 2 from cycle 1's).
    const o = { ...TINY_FLUX_DEFAULTS, vaeSteps: 2, vaeBatch: 2, cacheSize: 8, ditSteps: 2, growSteps: 2, polishSteps: [2, 2], polishLr: 0, ditBatch: 2, threads: 2 };
    await pretrainTinyFlux(o, out, scratch, (l) => lines.push(l));
    expect(lines.some((l) => l.startsWith('stage B step 2/2'))).toBe(true);
    expect(lines).toContain(`stage C: ${o.ditDoubleBlocks} + ${o.ditSingleBlocks} blocks grown to ${o.ditDoubleBlocks + o.growDoubleBlocks} + ${o.ditSingleBlocks + o.growSingleBlocks}`);
    expect(lines.some((l) => l.startsWith('stage C step 2/2'))).toBe(true);
    expect(lines.some((l) => l.startsWith('stage D step 2/2'))).toBe(true);
    expect(lines.some((l) => l.startsWith('stage D cycle 2 step 2/2'))).toBe(true);
    const grown = (await loadTrainState(join(scratch, 'grown.safetensors')))!.tensors;
    const written = await loadSafetensors(join(out, TINY_FLUX_FILES.transformer));
    for (const [name, t] of written.tensors) {
      const stageC = grown[`transformer/${name}`].data as Float32Array;
      expect(toFloat32(t)).toEqual(float16ToFloat32(float32ToFloat16(stageC)));
    }
    const m = await flux2Family.load(join(out, TINY_FLUX_FILES.transformer));
    const c = tinyFluxPretrainConfig(o);
    // The files hold the grown transformer.
    expect(c.transformer.depthDouble).toBe(o.ditDoubleBlocks + o.growDoubleBlocks);
    expect(m.config.transformer).toEqual({ ...c.transformer, name: m.config.transformer.name });
    expect(m.config.vae.latentChannels).toBe(TINY_FLUX_DEFAULTS.latentChannels);
    const patch = 4 * TINY_FLUX_DEFAULTS.latentChannels;
    expect(m.config.padId).toBe(c.padId);
    const rt = new K.Runtime({ threads: 2 });
    const sample = K.input('sample', [1, patch, 4, 4]), t = K.input('t', [1]), ids = K.input('ids', [1, c.text.maxLength], 'int64');
    const cond = flux2Family.encodeText([new K.Builder(m.textEncoders[0].weights)], m.config, [ids], { clipSkip: 1 });
    const v = flux2Family.denoise(new K.Builder(m.denoiser), m.config, { sample, timestep: t, cond });
    const s = await rt.load(K.compileGraph([sample, t, ids], { v }));
    const r = await s.run({
      sample: { dtype: 'float32', shape: [1, patch, 4, 4], data: new Float32Array(patch * 16).fill(0.5) },
      t: { dtype: 'float32', shape: [1], data: Float32Array.of(500) },
      ids: { dtype: 'int64', shape: [1, c.text.maxLength], data: BigInt64Array.from(m.textEncoders[0].tokenizer.tokenize('a red circle', { maxLength: c.text.maxLength }).ids as number[], BigInt) },
    });
    expect((r.v.data as Float32Array).every(Number.isFinite)).toBe(true);
    await rt.close();
    m.close();
    // eval:tiny-flux runs on those files (the accuracy of an untrained model means nothing; the path does).
    const ev = await evaluateTinyFlux({ dir: out, samples: 2, steps: 2, cfgScale: 4, seed: 1, prompts: 2, threads: 2 });
    expect(ev.images).toBe(4);
    expect(ev.rgb).toHaveLength(4);
    expect(ev.rgb[0]).toHaveLength(64 * 64 * 3);
    expect(ev.shapeAccuracy).toBeGreaterThanOrEqual(0);
  }, 300_000);
});
