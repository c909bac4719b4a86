// The committed tiny klein (assets/tiny-flux): its files fit the embedded models' 20 MB budget together
// with the SD tiny model, each holds exactly the tensors the tiny config's parts trace (the VAE in BFL's
// ldm names), so Load Model reads it as the klein architecture, not by luck of a loader's fallbacks, and its tokenizer.json is
// the one stage 0 of pretraining builds from the world's captions, the number of merges read from the
// files' own pretraining record.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as K from '../../../../kernels';
import { openSafetensors } from '../../../../kernels/io/safetensors';
import { detectFluxTransformer } from '../../../../kernels/flux/detect';
import { flux2Family, tinyFlux2Config } from '../../../../kernels/flux/family';
import { FLUX2_TINY } from '../../../../kernels/flux/config';
import { Qwen3PromptTokenizer, qwen3ChatText } from '../../../../kernels/flux/qwen3-tokenizer';
import { TINY_FLUX_DEFAULTS, TINY_FLUX_FILES, TINY_FLUX_ROOT, tinyFluxPretrainConfig, tinyFluxTokenizerJson, type TinyFluxPretrainOptions } from '../../../../kernels/flux/tiny/pretrain';
import { worldCaptions } from '../../../../kernels/sd/tiny/build-assets';
import { vaeToLdm } from '../../../../kernels/sd/keys/single-file';

const folderBytes = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);

async function headerShapes(file: string): Promise<{ shapes: Map<string, readonly number[]>; metadata: Record<string, string> }> {
  const r = await openSafetensors(join(TINY_FLUX_ROOT, file));
  try {
    return { shapes: new Map(r.header.entries.map((e) => [e.name, e.shape])), metadata: r.metadata };
  } finally {
    await r.close();
  }
}

describe('the committed tiny klein (assets/tiny-flux)', () => {
  it('fits in 20 MB together with the SD tiny model', () => {
    const sd = folderBytes(join(TINY_FLUX_ROOT, '..', 'tiny'));
    const flux = folderBytes(TINY_FLUX_ROOT);
    expect(sd).toBeGreaterThan(0);
    expect(flux).toBeGreaterThan(0);
    expect(sd + flux).toBeLessThanOrEqual(20 * 1024 * 1024);
  });

  it('each file holds exactly the tensors the tiny config traces; the transformer is detected as the tiny klein', async () => {
    // The config of the recipe the files record (their latent width and transformer size among its
    // options; a recipe recorded before stage C existed had none).
    const recipe: TinyFluxPretrainOptions = { ...TINY_FLUX_DEFAULTS, growSteps: 0, ...JSON.parse((await headerShapes(TINY_FLUX_FILES.textEncoder)).metadata.loragraph_pretrain) };
    const c = tinyFluxPretrainConfig(recipe);
    const traced = Object.fromEntries(flux2Family.parts(c).map((p) => {
      const r = new K.ShapeRecorder();
      p.trace(new K.Builder(r));
      return [p.id, r.shapes];
    }));
    const files: Record<string, string> = { transformer: TINY_FLUX_FILES.transformer, text_encoder: TINY_FLUX_FILES.textEncoder, vae: TINY_FLUX_FILES.vae };
    for (const [part, file] of Object.entries(files)) {
      const { shapes } = await headerShapes(file);
      // The VAE ships as BFL's ae.safetensors does: ldm names beside the BatchNorm statistics.
      const want = part === 'vae'
        ? new Map([...traced.vae].map(([k, v]) => [k.startsWith('bn.') ? k : vaeToLdm(c.vae, k), v]))
        : traced[part];
      expect(want, part).toBeDefined();
      expect([...shapes.keys()].sort(), file).toEqual([...want.keys()].sort());
      for (const [k, s] of want) expect([...shapes.get(k)!], `${file}: ${k}`).toEqual([...s]);
    }
    const { shapes } = await headerShapes(TINY_FLUX_FILES.transformer);
    const d = detectFluxTransformer([...shapes.keys()], (k) => shapes.get(k));
    expect(d?.layout).toBe('bfl');
    expect(d?.config).toMatchObject({
      generation: 2, hiddenSize: c.transformer.hiddenSize, numHeads: c.transformer.numHeads, depthDouble: c.transformer.depthDouble,
      depthSingle: c.transformer.depthSingle, contextDim: FLUX2_TINY.contextDim, inChannels: 4 * recipe.latentChannels, axesDim: c.transformer.axesDim,
      bias: false, sharedModulation: true, mlpActivation: 'swiglu', theta: 2000,
    });
  });

  it('tokenizer.json is what pretraining builds with the recorded merges, and every world caption round trips', async () => {
    const { metadata } = await headerShapes(TINY_FLUX_FILES.textEncoder);
    const merges = JSON.parse(metadata.loragraph_pretrain).merges as number;
    expect(merges).toBeGreaterThan(0);
    const shipped = JSON.parse(readFileSync(join(TINY_FLUX_ROOT, TINY_FLUX_FILES.tokenizer), 'utf8'));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(tinyFluxTokenizerJson(merges))));
    const c = tinyFlux2Config();
    const tok = Qwen3PromptTokenizer.fromFiles(join(TINY_FLUX_ROOT, TINY_FLUX_FILES.tokenizer), undefined, c.text.maxLength);
    expect(tok.padId).toBe(c.padId);
    expect(tok.vocabSize).toBeLessThanOrEqual(c.text.vocabSize);
    for (const caption of [...worldCaptions(), 'photo of [trigger]']) {
      const ids = tok.promptIds(caption);
      expect(ids.length).toBeLessThanOrEqual(c.text.maxLength);
      expect(tok.decode(ids)).toBe(qwen3ChatText(caption));
    }
  });
});
