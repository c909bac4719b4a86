// FLUX.2 [dev]'s Mistral Small 3 text encoder: a tekken-style tokenizer.json written here and run by
// @huggingface/tokenizers (system + user chat template, left padding with <pad>, truncation); the
// full-size 24B language model's names, shapes and parameter count without weights, against ComfyUI's
// single-file key list and transformers' Mistral3 names; a tiny Mistral written as safetensors, loaded
// by the FLUX.2 loader and compared with a plain-loop reference on small left-padded inputs.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { buildTekkenStyleTokenizerJson, TEKKEN_CONTROL_TOKENS } from '../../../kernels/flux/tekken-tokenizer-json';
import { FLUX2_SYSTEM_MESSAGE, MistralPromptTokenizer, mistralChatText } from '../../../kernels/flux/mistral-tokenizer';
import { MISTRAL_SMALL_3_24B, MISTRAL_TINY, mistralLanguageModelName, mistralLanguageModelShapes, mistralConfigFromShapes, mistralStatedSizes } from '../../../kernels/flux/mistral';
import { llamaDecoderFeatures, llamaFeatureDim, type LlamaDecoderConfig } from '../../../kernels/text/llama-decoder';
import { openFlux2TextEncoder } from '../../../kernels/flux/load';
import { embeddedTekkenTokenizerJson, tekkenToTokenizerJson } from '../../../kernels/flux/tekken';
import { tekkenOf } from './tiny-dev-files';
import { gradCheck, runtime } from '../gradcheck';

afterAll(() => runtime().close());

const corpus = ['a red circle on a blue background', 'a green square on a yellow background', 'photo of sks star', 'You are an AI that reasons about image descriptions.'];
const dir = mkdtempSync(join(tmpdir(), 'mistral-'));
const tokPath = join(dir, 'tokenizer.json');
writeFileSync(tokPath, JSON.stringify(buildTekkenStyleTokenizerJson(corpus, 60)));

describe('Mistral prompt tokenizer', () => {
  const tok = MistralPromptTokenizer.fromFile(tokPath, 300);

  it('round trips prompts through BFL\'s system message and Mistral\'s template; [IMG] is dropped as BFL does', () => {
    for (const p of ['a red circle on a blue background', 'café ✨ 42 items', 'photo of [trigger]\nsecond line', '']) {
      expect(tok.decode(tok.promptIds(p))).toBe(mistralChatText(p));
    }
    expect(mistralChatText('a [IMG]cat')).toBe(`<s>[SYSTEM_PROMPT]${FLUX2_SYSTEM_MESSAGE}[/SYSTEM_PROMPT][INST]a cat[/INST]`);
  });

  it('control tokens are single tokens at mistral_common\'s ids; <s> leads, [/INST] ends', () => {
    const ids = tok.promptIds('red');
    expect(ids[0]).toBe(1);
    expect(ids[1]).toBe(TEKKEN_CONTROL_TOKENS.indexOf('[SYSTEM_PROMPT]'));
    expect(ids).toContain(18);
    expect(ids).toContain(3);
    expect(ids.at(-1)).toBe(4);
    expect(tok.padId).toBe(11);
  });

  it('pads on the left with <pad>, cuts the end past the maximum length', () => {
    const n = tok.promptIds('red').length;
    const padded = tok.tokenize('red', { maxLength: n + 5 }).ids;
    expect(padded.slice(0, 5)).toEqual([11, 11, 11, 11, 11]);
    expect(padded.slice(5)).toEqual(tok.promptIds('red'));
    const cut = tok.tokenize('red', { maxLength: 4 }).ids;
    expect(cut).toEqual(tok.promptIds('red').slice(0, 4));
  });

  it('a Qwen tokenizer or a broken file is refused naming the file', () => {
    const bad = join(dir, 'broken.json');
    writeFileSync(bad, '{"model": ');
    expect(() => MistralPromptTokenizer.fromFile(bad)).toThrow(/broken\.json/);
  });
});

describe('tekken.json (ComfyUI\'s embedded tekken_model)', () => {
  it('converted as transformers does, it tokenizes as the tokenizer.json it came from; read from a file\'s tekken_model', async () => {
    const json = buildTekkenStyleTokenizerJson(corpus, 60) as Parameters<typeof tekkenOf>[0];
    const tekken = tekkenOf(json);
    const a = new MistralPromptTokenizer(json, {}, 300), b = new MistralPromptTokenizer(tekkenToTokenizerJson(tekken), {}, 300);
    for (const p of ['a red circle on a blue background', 'photo of sks star, backgrounds', 'café ✨ 42 items', 'reasons about image descriptions']) {
      expect(b.promptIds(p)).toEqual(a.promptIds(p));
    }
    expect(b.padId).toBe(11);
    const file = join(dir, 'with-tekken.safetensors');
    const bytes = new TextEncoder().encode(JSON.stringify(tekken));
    await writeSafetensors(file, { tekken_model: { dtype: 'U8', shape: [bytes.length], data: bytes }, 'model.norm.weight': { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
    const embedded = await embeddedTekkenTokenizerJson(file);
    expect(new MistralPromptTokenizer(embedded!, {}, 300).promptIds('a red circle')).toEqual(a.promptIds('a red circle'));
    const broken = join(dir, 'broken-tekken.safetensors');
    await writeSafetensors(broken, { tekken_model: { dtype: 'U8', shape: [3], data: Uint8Array.of(123, 34, 125) } });
    await expect(embeddedTekkenTokenizerJson(broken)).rejects.toThrow(/broken-tekken\.safetensors: tekken_model is not tekken JSON/);
  });
});

/** ComfyUI's mistral_3_small_flux2_bf16.safetensors: the language model under `model.` (no LM head) and the tekken tokenizer. */
function comfyKeyList(layers: number): string[] {
  const perLayer = ['input_layernorm', 'post_attention_layernorm', 'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
  return ['model.embed_tokens.weight', 'model.norm.weight', 'tekken_model', ...Array.from({ length: layers }, (_, i) => perLayer.map((p) => `model.layers.${i}.${p}.weight`)).flat()];
}

describe('Mistral Small 3 24B at full size, without weights', () => {
  it('names and shapes match ComfyUI\'s single file key for key; 22.90 B parameters in the language model', () => {
    const { tensors, parameterCount } = mistralLanguageModelShapes(MISTRAL_SMALL_3_24B);
    const comfy = comfyKeyList(40);
    expect(comfy).toHaveLength(363);
    expect([...tensors.keys()].sort()).toEqual(comfy.map(mistralLanguageModelName).filter((k): k is string => !!k).sort());
    expect(tensors.get('model.embed_tokens.weight')).toEqual([131072, 5120]);
    expect(tensors.get('model.layers.0.self_attn.q_proj.weight')).toEqual([32 * 128, 5120]);
    expect(tensors.get('model.layers.39.self_attn.k_proj.weight')).toEqual([8 * 128, 5120]);
    expect(tensors.get('model.layers.0.mlp.down_proj.weight')).toEqual([5120, 32768]);
    // 131072·5120 + 40·(2·5120·4096 + 2·5120·1024 + 3·5120·32768 + 2·5120) + 5120
    expect(parameterCount).toBe(22_901_314_560);
  });

  it('transformers\' Mistral3 names (both layouts) map onto the same names; vision tower and LM head are not read', () => {
    expect(mistralLanguageModelName('model.language_model.layers.7.mlp.up_proj.weight')).toBe('model.layers.7.mlp.up_proj.weight');
    expect(mistralLanguageModelName('language_model.model.embed_tokens.weight')).toBe('model.embed_tokens.weight');
    expect(mistralLanguageModelName('model.language_model.norm.weight')).toBe('model.norm.weight');
    for (const k of ['model.vision_tower.transformer.layers.0.attention.q_proj.weight', 'model.multi_modal_projector.linear_1.weight', 'lm_head.weight', 'tekken_model']) {
      expect(mistralLanguageModelName(k)).toBeUndefined();
    }
  });

  it('the reference\'s config.json: Mistral Small 3.1/3.2\'s text_config gives these sizes; the head width is stated (128), not hidden / heads (160)', () => {
    // FLUX.2-dev's text_encoder/config.json (transformers' Mistral3 for Mistral-Small-3.2-24B-Instruct-2506,
    // whose language model Mistral-Small-3.1-24B-Instruct-2503 shares); ComfyUI's Mistral3Small24BConfig agrees.
    const configJson = {
      architectures: ['Mistral3ForConditionalGeneration'], model_type: 'mistral3', image_token_index: 10,
      text_config: { head_dim: 128, hidden_act: 'silu', hidden_size: 5120, intermediate_size: 32768, max_position_embeddings: 131072, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 40, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 1_000_000_000.0, sliding_window: null, vocab_size: 131072 },
      vision_config: { head_dim: 64, hidden_size: 1024, num_attention_heads: 16, num_hidden_layers: 24, rope_theta: 10000.0 },
    };
    const tc = configJson.text_config;
    const stated = mistralStatedSizes(configJson);
    expect(stated).toEqual({ headDim: 128, ropeTheta: 1e9, rmsNormEps: 1e-5, numHeads: 32, numKvHeads: 8 });
    expect(tc.hidden_size / tc.num_attention_heads).toBe(160);
    const fromReference = {
      ...MISTRAL_SMALL_3_24B, vocabSize: tc.vocab_size, hiddenSize: tc.hidden_size, intermediateSize: tc.intermediate_size, numLayers: tc.num_hidden_layers,
      numHeads: tc.num_attention_heads, numKvHeads: tc.num_key_value_heads, headDim: tc.head_dim, ropeTheta: tc.rope_theta, rmsNormEps: tc.rms_norm_eps,
    };
    expect(fromReference).toEqual(MISTRAL_SMALL_3_24B);
    // Shapes computed from the reference's numbers: q is 32 × 128 = 4096 rows on a 5120 stream; 22.90 B parameters.
    const { tensors, parameterCount } = mistralLanguageModelShapes(fromReference);
    expect(tensors.get('model.layers.0.self_attn.q_proj.weight')).toEqual([4096, 5120]);
    expect(tensors.get('model.layers.0.self_attn.o_proj.weight')).toEqual([5120, 4096]);
    expect(tensors.get('model.layers.0.self_attn.v_proj.weight')).toEqual([1024, 5120]);
    expect(parameterCount).toBe(tc.vocab_size * tc.hidden_size + tc.num_hidden_layers * (2 * tc.hidden_size * 4096 + 2 * tc.hidden_size * 1024 + 3 * tc.hidden_size * tc.intermediate_size + 2 * tc.hidden_size) + tc.hidden_size);
    expect(parameterCount).toBe(22_901_314_560);
    const shapeOf = (k: string) => tensors.get(k);
    expect(mistralConfigFromShapes(shapeOf, [...tensors.keys()], {}, 512, stated)).toEqual(MISTRAL_SMALL_3_24B);
    // hidden / heads as the head width does not fit the projections; stated head counts must agree with them.
    expect(mistralConfigFromShapes(shapeOf, [...tensors.keys()], {}, 512, { ...stated, headDim: 160 })).toBeUndefined();
    expect(mistralConfigFromShapes(shapeOf, [...tensors.keys()], {}, 512, { ...stated, numKvHeads: 4 })).toBeUndefined();
  });

  it('sizes read back from the shapes; the FLUX.2 features need layers up to 30 only (ComfyUI\'s pruned file suffices)', () => {
    const { tensors } = mistralLanguageModelShapes(MISTRAL_SMALL_3_24B);
    expect(mistralConfigFromShapes((k) => tensors.get(k), [...tensors.keys()])).toEqual(MISTRAL_SMALL_3_24B);
    const pruned = [...tensors.keys()].filter((k) => { const m = /layers\.(\d+)\./.exec(k); return !m || Number(m[1]) < 30; });
    expect(mistralConfigFromShapes((k) => tensors.get(k), pruned)).toMatchObject({ numLayers: 30, outputLayers: [10, 20, 30] });
    const rec = new K.ShapeRecorder();
    const y = llamaDecoderFeatures(new K.Builder(rec), MISTRAL_SMALL_3_24B, K.input('ids', [1, 512], 'int64'), K.input('mask', [1, 512]));
    expect(y.shape).toEqual([1, 512, 15360]);
    expect(llamaFeatureDim(MISTRAL_SMALL_3_24B)).toBe(15360);
    expect(rec.shapes.size).toBe(1 + 30 * 9);
    expect(rec.shapes.has('model.layers.30.input_layernorm.weight')).toBe(false);
  });
});

// ---- a plain-loop reference of the decoder (transformers' LlamaModel semantics) ----
type Weights = Map<string, Float32Array>;

function referenceFeatures(cfg: LlamaDecoderConfig, w: Weights, ids: number[], mask: number[]): Float32Array {
  const L = ids.length, d = cfg.hiddenSize, hd = cfg.headDim, H = cfg.numHeads, KV = cfg.numKvHeads;
  const get = (k: string) => w.get(k)!;
  const linear = (x: Float32Array, name: string, out: number, inp: number) => {
    const W = get(name), y = new Float32Array(L * out);
    for (let t = 0; t < L; t++) for (let o = 0; o < out; o++) { let s = 0; for (let i = 0; i < inp; i++) s += x[t * inp + i] * W[o * inp + i]; y[t * out + o] = s; }
    return y;
  };
  const rms = (x: Float32Array, name: string) => {
    const g = get(name), y = new Float32Array(x.length);
    for (let t = 0; t < L; t++) { let s = 0; for (let i = 0; i < d; i++) s += x[t * d + i] ** 2; const r = 1 / Math.sqrt(s / d + cfg.rmsNormEps); for (let i = 0; i < d; i++) y[t * d + i] = x[t * d + i] * r * g[i]; }
    return y;
  };
  const rope = (x: Float32Array, heads: number) => {
    const half = hd / 2;
    for (let t = 0; t < L; t++) for (let h = 0; h < heads; h++) for (let i = 0; i < half; i++) {
      const a = t / cfg.ropeTheta ** ((2 * i) / hd), o = (t * heads + h) * hd;
      const x1 = x[o + i], x2 = x[o + i + half];
      x[o + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
      x[o + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
    }
  };
  const emb = get('model.embed_tokens.weight');
  let h = new Float32Array(L * d);
  ids.forEach((id, t) => h.set(emb.subarray(id * d, (id + 1) * d), t * d));
  const out: Float32Array[] = [];
  for (let l = 0; l < Math.max(...cfg.outputLayers); l++) {
    const p = `model.layers.${l}.`;
    const x = rms(h, `${p}input_layernorm.weight`);
    const q = linear(x, `${p}self_attn.q_proj.weight`, H * hd, d), k = linear(x, `${p}self_attn.k_proj.weight`, KV * hd, d), v = linear(x, `${p}self_attn.v_proj.weight`, KV * hd, d);
    rope(q, H); rope(k, KV);
    const o = new Float32Array(L * H * hd);
    for (let hh = 0; hh < H; hh++) {
      const kh = Math.floor(hh / (H / KV));
      for (let i = 0; i < L; i++) {
        const visible = Array.from({ length: i + 1 }, (_, j) => j).filter((j) => mask[j] === 1);
        if (!visible.length) continue; // a query that sees no key attends to nothing (zero)
        const s = visible.map((j) => { let a = 0; for (let c = 0; c < hd; c++) a += q[(i * H + hh) * hd + c] * k[(j * KV + kh) * hd + c]; return a / Math.sqrt(hd); });
        const m = Math.max(...s), e = s.map((a) => Math.exp(a - m)), z = e.reduce((a, b) => a + b);
        visible.forEach((j, n) => { for (let c = 0; c < hd; c++) o[(i * H + hh) * hd + c] += (e[n] / z) * v[(j * KV + kh) * hd + c]; });
      }
    }
    const attn = linear(o, `${p}self_attn.o_proj.weight`, d, H * hd);
    const y = h.map((a, i) => a + attn[i]);
    const m = rms(y, `${p}post_attention_layernorm.weight`);
    const g = linear(m, `${p}mlp.gate_proj.weight`, cfg.intermediateSize, d), u = linear(m, `${p}mlp.up_proj.weight`, cfg.intermediateSize, d);
    const act = g.map((a, i) => (a / (1 + Math.exp(-a))) * u[i]);
    const down = linear(act, `${p}mlp.down_proj.weight`, d, cfg.intermediateSize);
    h = y.map((a, i) => a + down[i]);
    if (cfg.outputLayers.includes(l + 1)) out.push(h);
  }
  const f = new Float32Array(L * d * out.length);
  for (let t = 0; t < L; t++) out.forEach((o, n) => f.set(o.subarray(t * d, (t + 1) * d), (t * out.length + n) * d));
  return f;
}

describe('tiny Mistral-architecture encoder from a safetensors file', () => {
  it('loaded as ComfyUI names it (with tekken_model, head width in metadata), it computes the plain-loop reference, pads blind', async () => {
    const cfg = { ...MISTRAL_TINY, maxLength: 10 };
    const rand = new K.RandomWeights(21, 0.3);
    llamaDecoderFeatures(new K.Builder(rand), cfg, K.input('ids', [1, 2], 'int64'), K.input('mask', [1, 2]));
    const weights: Weights = new Map([...rand.tensors].map(([k, t]) => [k, t.data as Float32Array]));
    // RMSNorm gains near 1 so the layers stay in a range where differences show.
    for (const [k, v] of weights) if (k.endsWith('layernorm.weight')) v.forEach((x, i) => { v[i] = 1 + x; });
    const file = join(dir, 'mistral_3_small_flux2_tiny.safetensors');
    await writeSafetensors(file, {
      ...Object.fromEntries([...weights].map(([k, data]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: rand.tensors.get(k)!.shape, data }])),
      tekken_model: { dtype: 'U8', shape: [4], data: Uint8Array.of(123, 34, 125, 0) },
    }, { loragraph_head_dim: String(cfg.headDim), loragraph_text_max_length: String(cfg.maxLength) });
    const te = await openFlux2TextEncoder(file);
    expect(te.kind).toBe('mistral');
    expect(te.config).toEqual({ ...cfg, name: te.config.name });
    const ids = K.input('ids', [2, cfg.maxLength], 'int64');
    const mask = K.input('mask', [2, cfg.maxLength]);
    const s = await runtime().load(K.compileGraph([ids, mask], { y: llamaDecoderFeatures(new K.Builder(te.weights), te.config, ids, mask) }));
    // Left padding as the tokenizer pads: 3 and 0 pads; the two rows hold the same prompt tokens at the end.
    const prompt = [1, 17, 40, 200, 18, 3, 77];
    const rows = [[11, 11, 11, ...prompt], [1, 17, 40, 90, 91, 200, 18, 3, 77, 4]];
    const masks = rows.map((r, b) => r.map((id, i) => (b === 0 && i < 3 ? 0 : 1)));
    const r = await s.run({
      ids: { dtype: 'int64', shape: [2, cfg.maxLength], data: BigInt64Array.from(rows.flat().map(BigInt)) },
      mask: { dtype: 'float32', shape: [2, cfg.maxLength], data: Float32Array.from(masks.flat()) },
    });
    const got = r.y.data as Float32Array;
    const D = llamaFeatureDim(cfg);
    rows.forEach((row, b) => {
      const want = referenceFeatures(cfg, weights, row, masks[b]);
      for (let i = 0; i < want.length; i++) expect(got[b * cfg.maxLength * D + i]).toBeCloseTo(want[i], 3);
    });
    // Pads before the prompt change nothing: the padded row's prompt features are the unpadded prompt's.
    const alone = referenceFeatures(cfg, weights, prompt, prompt.map(() => 1));
    for (let i = 0; i < alone.length; i++) expect(got[3 * D + i]).toBeCloseTo(alone[i], 3);
    let spread = 0;
    for (let i = 0; i < D; i++) spread = Math.max(spread, Math.abs(got[3 * D + i] - got[4 * D + i]));
    expect(spread).toBeGreaterThan(1e-3);
    te.weights.close();
  });

  it('transformers\' Mistral3 layout (model.language_model.*, vision tower, LM head) serves the same tensors', async () => {
    const rand = new K.RandomWeights(5, 0.3);
    llamaDecoderFeatures(new K.Builder(rand), MISTRAL_TINY, K.input('ids', [1, 2], 'int64'), K.input('mask', [1, 2]));
    const file = join(dir, 'mistral3-hf.safetensors');
    const put = (k: string, t: K.HostTensor): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }];
    await writeSafetensors(file, Object.fromEntries([
      ...[...rand.tensors].map(([k, t]) => put(k.replace(/^model\./, 'model.language_model.'), t)),
      put('model.vision_tower.ln_pre.weight', { dtype: 'float32', shape: [8], data: new Float32Array(8) }),
      put('lm_head.weight', { dtype: 'float32', shape: [MISTRAL_TINY.vocabSize, MISTRAL_TINY.hiddenSize], data: new Float32Array(MISTRAL_TINY.vocabSize * MISTRAL_TINY.hiddenSize) }),
    ]), { loragraph_head_dim: String(MISTRAL_TINY.headDim) });
    const te = await openFlux2TextEncoder(file);
    expect(te.kind).toBe('mistral');
    expect(te.config).toMatchObject({ hiddenSize: 16, numHeads: 4, numKvHeads: 2, numLayers: 3, vocabSize: MISTRAL_TINY.vocabSize });
    expect(te.params).toBe([...rand.tensors.values()].reduce((n, t) => n + t.data.length, 0));
    te.weights.close();
  });
});

describe('a transformers folder: config.json states what the tensors do not show', () => {
  it('head width, RoPE theta and eps come from config.json\'s text_config; a config contradicting the projections is refused by name', async () => {
    const rand = new K.RandomWeights(9, 0.3);
    llamaDecoderFeatures(new K.Builder(rand), MISTRAL_TINY, K.input('ids', [1, 2], 'int64'), K.input('mask', [1, 2]));
    const folder = join(dir, 'text_encoder');
    mkdirSync(folder, { recursive: true });
    // No loragraph_head_dim: without config.json the head width would be Mistral Small's 128, which 16 rows do not hold.
    await writeSafetensors(join(folder, 'model.safetensors'), Object.fromEntries([...rand.tensors].map(([k, t]): [string, TensorToWrite] => [k.replace(/^model\./, 'model.language_model.'), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])));
    await expect(openFlux2TextEncoder(folder)).rejects.toThrow(/not a Qwen3 text encoder, nor a Mistral Small one/);
    const textConfig = { head_dim: MISTRAL_TINY.headDim, hidden_size: 16, num_attention_heads: 4, num_key_value_heads: 2, rope_theta: 1_000_000.0, rms_norm_eps: 1e-6 };
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ model_type: 'mistral3', text_config: textConfig }));
    const te = await openFlux2TextEncoder(folder);
    expect(te.config).toMatchObject({ headDim: 4, numHeads: 4, numKvHeads: 2, ropeTheta: 1e6, rmsNormEps: 1e-6 });
    te.weights.close();
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ model_type: 'mistral3', text_config: { ...textConfig, num_attention_heads: 8, head_dim: 2 } }));
    await expect(openFlux2TextEncoder(folder)).rejects.toThrow(/config\.json states 8 heads and 2 KV heads of width 2; the q\/k projections are \[16,16\] \/ \[8,16\]/);
  });
});

describe('left-padded decoder gradients', () => {
  it('finite differences agree with autodiff through the masked attention (v and q projections, pad queries zeroed)', async () => {
    const cfg = { ...MISTRAL_TINY, numLayers: 2, outputLayers: [1, 2], vocabSize: 30 };
    const rand = new K.RandomWeights(8, 0.4);
    const len = 5;
    const ids: K.HostTensor = { dtype: 'int64', shape: [2, len], data: BigInt64Array.from([11, 11, 1, 7, 9, 1, 3, 7, 9, 4].map(BigInt)) };
    const mask: K.HostTensor = { dtype: 'float32', shape: [2, len], data: Float32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 1, 1]) };
    const d = cfg.hiddenSize, qDim = cfg.numHeads * cfg.headDim, kvDim = cfg.numKvHeads * cfg.headDim;
    const worst = await gradCheck((v, q, i, m) => {
      const given = new Map([['model.layers.0.self_attn.v_proj.weight', v], ['model.layers.1.self_attn.q_proj.weight', q]]);
      const w: K.WeightSource = { get: (path, shape) => given.get(path) ?? rand.get(path, shape) };
      return llamaDecoderFeatures(new K.Builder(w), cfg, i, m);
    }, [{ shape: [kvDim, d] }, { shape: [qDim, d] }, { shape: [2, len], fixed: ids }, { shape: [2, len], fixed: mask }]);
    expect(worst).toBeLessThan(2e-2);
  });
});
