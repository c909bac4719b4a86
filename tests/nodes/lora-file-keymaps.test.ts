// Every tensor of every LoRA file Save LoRA writes is loaded by the tools its format is for: each saved
// file (LoRA, LoCon, LoKr; with and without the text encoder) is held against the consumers' key maps in
// tests/fixtures/lora-keymaps (derived from ComfyUI's, A1111's and diffusers' loader code, not from ours),
// and reads back through Load LoRA's reader to the same weights. Data-driven: a family's fixture plus its
// entry in FAMILIES is all a new family needs.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { SD15 } from '../../kernels/sd/config';
import { peftKeys } from '../../kernels/sd/lora-names';
import { LORA_FORMAT_TOOLS, loraFileTensors, readLoraFile, saveLoraFile, type LoraFormat } from '../../nodes/models/lora-file';
import { adapterSetsFor, setList } from '../../nodes/models/adapters';
import type { AdapterSpec } from '../../nodes/sockets';
import type { HostTensor } from '../../kernels';
import type { ModelFamily } from '../../kernels/families/contract';
import { sd1Family } from '../../kernels/sd/sd1-family';
import { sdxlFamily } from '../../kernels/sdxl/family';
import { SDXL_BASE } from '../../kernels/sdxl/config';
import { Rng } from '../../kernels/random';
import { trainableFamilies } from '../../kernels/families/registry';
import { keyMapFixtures, unconsumed } from '../fixtures/lora-keymaps/check';
import { flux2Family, FLUX2_KLEIN_9B_FAMILY } from '../../kernels/flux/family';
import { flux1Family, FLUX1_DEV_FAMILY } from '../../kernels/flux/family1';
import { wanFamily, WAN21_I2V_14B_FAMILY } from '../../kernels/wan/family';

const dir = mkdtempSync(join(tmpdir(), 'loragraph-keymaps-'));

function spec(algo: AdapterSpec['algo'], trainTextEncoder: boolean): AdapterSpec {
  return Object.freeze({
    kind: 'adapter' as const, algo, rank: 4, alpha: 2, convRank: 2, convAlpha: 1, dropout: 0, factor: algo === 'LoKr' ? 4 : -1, fullMatrix: false,
    preset: algo === 'LoRA' ? 'all_linear' as const : 'all_linear_conv' as const, include: [], exclude: [], trainTextEncoder, byteSize: () => 0,
  });
}

/** The families whose files Save LoRA writes, with the full-size config users move files between tools for. */
interface FamilyCase {
  family: ModelFamily;
  config: unknown;
  /** Load LoRA's reader for the family, where there is one. */
  read?: (path: string) => ReturnType<typeof readLoraFile>;
}
const FAMILIES: Record<string, FamilyCase> = {
  sd1: { family: sd1Family, config: SD15, read: (path) => readLoraFile(path, SD15) },
  sdxl: { family: sdxlFamily as ModelFamily, config: SDXL_BASE },
};

/**
 * Families with LoRA layouts of their own (ModelFamily.loraFiles: ai-toolkit, kohya, diffusers), checked
 * below at full size for the family's default targets (ai-toolkit's: attention_ff).
 */
const DIT_FAMILIES: Record<string, { family: ModelFamily; config: unknown }> = {
  flux2: { family: flux2Family as ModelFamily, config: FLUX2_KLEIN_9B_FAMILY },
  flux1: { family: flux1Family as ModelFamily, config: FLUX1_DEV_FAMILY },
  wan: { family: wanFamily as ModelFamily, config: WAN21_I2V_14B_FAMILY },
};

/** Seeded normal weights for every adapter parameter (up included, so the alpha folding shows). */
function randomWeights(s: AdapterSpec, family: ModelFamily, config: unknown, seed = 11): Record<string, HostTensor> {
  const rng = new Rng(seed);
  const out: Record<string, HostTensor> = {};
  for (const set of setList(adapterSetsFor(s, { family, config }))) {
    for (const p of set.paramSpecs) out[p.key] = { dtype: 'float32', shape: [...p.shape], data: rng.fork(p.key).fillNormal(new Float32Array(p.shape.reduce((a, b) => a * b, 1))) };
  }
  return out;
}

const fixtures = keyMapFixtures();

it('every family Save LoRA can write for has a key-map fixture and a case here', () => {
  for (const f of trainableFamilies()) {
    expect(FAMILIES[f.id] ?? DIT_FAMILIES[f.id], `add ${f.id} to FAMILIES (or DIT_FAMILIES)`).toBeDefined();
    expect(fixtures[f.id], `derive tests/fixtures/lora-keymaps/${f.id}.json (see its README)`).toBeDefined();
  }
});
const CASES = (['LoRA', 'LoCon', 'LoKr'] as const).flatMap((algo) => [false, true].map((te) => ({ algo, te })));

describe.each(Object.keys(FAMILIES))('LoRA files for %s load completely where their format is for', (family) => {
  const fx = fixtures[family];
  const readBack = FAMILIES[family].read ? ', and Load LoRA reads it back' : '';
  const { family: fam, config, read } = FAMILIES[family];

  it('has a key-map fixture', () => expect(fx?.family).toBe(family));

  it("the tools Save LoRA names for each format are the ones the key maps check (sd-scripts aside)", () => {
    const tool: Record<string, string> = { comfyui: 'ComfyUI', a1111: 'A1111/Forge', 'diffusers-kohya': 'diffusers', diffusers: 'diffusers' };
    for (const [format, consumers] of Object.entries(fx.formats)) {
      const claimed = LORA_FORMAT_TOOLS[format as keyof typeof LORA_FORMAT_TOOLS].filter((t) => !t.startsWith('kohya sd-scripts'));
      expect([...claimed].sort(), format).toEqual(consumers.map((c) => tool[c]).sort());
    }
  });

  for (const { algo, te } of CASES) {
    for (const format of ['kohya', 'diffusers'] as LoraFormat[]) {
      if (algo === 'LoKr' && format === 'diffusers') continue;
      const label = `${algo}${te ? ' + text encoder' : ''}, ${format}`;
      it(`${label}: every tensor is consumed by each of its tools${readBack}`, async () => {
        const s = spec(algo, te);
        const weights = randomWeights(s, fam, config);
        const path = join(dir, `${family}-${algo}-${te}-${format}.safetensors`);
        await saveLoraFile(path, { spec: s, family: fam, config, weights, format, dtype: 'F32', metadata: {} });
        const file = await loadSafetensors(path);
        const keys = [...file.tensors.keys()];
        expect(keys.some((k) => /^(lora_te\d?_|text_encoder(_2)?\.)/.test(k)), 'text-encoder tensors present').toBe(te);

        const consumers = fx.formats[algo === 'LoKr' ? 'kohya-lokr' : format];
        expect(consumers.length).toBeGreaterThan(0);
        for (const name of consumers) expect(unconsumed(fx.consumers[name], keys), `${name} leaves these unloaded`).toEqual([]);

        if (!read) return;
        const back = await read(path);
        expect(back.format).toBe(format);
        expect(back.spec.algo).toBe(algo);
        expect(back.spec.trainTextEncoder).toBe(te);
        // diffusers files fold alpha into `up` (read back as alpha = rank): compare what each module adds, up · alpha/rank.
        const scales = (sp: AdapterSpec) => new Map(setList(adapterSetsFor(sp, { family: fam, config })).flatMap((set) => set.modules.map((m) => [m.name, m.scale] as const)));
        const before = scales(s), after = scales(back.spec);
        for (const [k, v] of Object.entries(weights)) {
          const got = back.weights[k];
          expect(got, k).toBeDefined();
          const module = k.slice(0, k.indexOf('.'));
          const isUp = /\.lora_up\.weight$/.test(k);
          const a = v.data as Float32Array, b = got.data as Float32Array;
          let worst = 0;
          for (let i = 0; i < a.length; i++) {
            const x = isUp ? a[i] * before.get(module)! : a[i], y = isUp ? b[i] * after.get(module)! : b[i];
            worst = Math.max(worst, Math.abs(x - y) / (Math.abs(x) + 1e-6));
          }
          expect(worst, k).toBeLessThan(format === 'kohya' ? 1e-12 : 1e-6);
        }
      });
    }
  }

  it('the check can fail: the PEFT layout diffusers ≥ 0.24 saves loses every UNet attention projection in ComfyUI', () => {
    // The layout Save LoRA wrote before (issue 19): PEFT names for every module.
    const s = spec('LoCon', true);
    const tensors = loraFileTensors({ spec: s, family: fam, config, weights: randomWeights(s, fam, config), format: 'kohya', dtype: 'F32' });
    // Every module the adapter has, named as PEFT names it: <diffusers prefix>.<diffusers module path>.
    const sets = adapterSetsFor(s, { family: fam, config });
    const prefixes = ['unet', ...(s.trainTextEncoder ? fam.loraComponents(config).filter((c) => c.part !== 'unet').map((c) => c.peftPrefix) : [])];
    const peft = setList(sets).flatMap((set, i) => set.modules.flatMap((m) => Object.values(peftKeys(prefixes[i] as 'unet', m.info.module))));
    expect(Object.keys(tensors).filter((k) => !k.endsWith('.alpha')).length).toBe(peft.length);
    const lost = unconsumed(fx.consumers.comfyui, peft);
    const attention = peft.filter((k) => /\.attn[12]\.to_(q|k|v|out\.0)\.lora_[AB]\.weight$/.test(k));
    expect(attention.length).toBeGreaterThan(0);
    expect(lost).toEqual(attention);
    expect(unconsumed(fx.consumers.diffusers, peft)).toEqual([]); // diffusers itself reads them
  });

  it('diffusers format refuses LoKr by name (diffusers loads no LoKr)', () => {
    const s = spec('LoKr', false);
    expect(() => loraFileTensors({ spec: s, family: fam, config, weights: randomWeights(s, fam, config), format: 'diffusers', dtype: 'F32' })).toThrow(/diffusers loads no LoKr/);
  });
});

const ditSpec = (algo: AdapterSpec['algo'], preset: AdapterSpec['preset']): AdapterSpec => ({ ...spec(algo, false), preset });

describe.each(Object.keys(DIT_FAMILIES))('LoRA files for %s in its own layouts load completely where their format is for, and Load LoRA reads them back', (id) => {
  const fx = fixtures[id];
  const { family, config } = DIT_FAMILIES[id];
  const formats = Object.keys(family.loraFiles!.formats) as LoraFormat[];

  it('has a key-map fixture covering every format Save LoRA offers for it', () => {
    expect(fx?.family).toBe(id);
    for (const f of formats) expect(fx.formats[f], f).toBeDefined();
  });

  it('the tools Save LoRA names for each format are the ones the key maps check (trainers aside)', () => {
    const tool: Record<string, string> = { comfyui: 'ComfyUI', diffusers: 'diffusers', 'diffusers-kohya': 'diffusers', 'diffusers-ai-toolkit': 'diffusers' };
    for (const f of formats) {
      const claimed = family.loraFiles!.formats[f].filter((t) => t === 'ComfyUI' || t === 'diffusers');
      expect([...claimed].sort(), f).toEqual([...new Set(fx.formats[f].map((c) => tool[c]))].sort());
    }
  });

  for (const format of ['ai-toolkit', 'kohya', 'diffusers'] as LoraFormat[]) {
    it(`LoRA on the default targets, ${format}: every tensor is consumed by each of its tools, and it reads back to the same deltas`, async () => {
      const s = ditSpec('LoRA', 'attention_ff');
      const weights = randomWeights(s, family, config);
      const path = join(dir, `${id}-${format}.safetensors`);
      await saveLoraFile(path, { spec: s, family, config, weights, format, dtype: 'F32', metadata: {} });
      const keys = [...(await loadSafetensors(path)).tensors.keys()];
      for (const name of fx.formats[format]) expect(unconsumed(fx.consumers[name], keys), `${name} leaves these unloaded`).toEqual([]);

      const back = await readLoraFile(path, config, family);
      expect(back.spec.algo).toBe('LoRA');
      expect([...back.spec.include].sort()).toEqual(setList(adapterSetsFor(s, { family, config })).flatMap((set) => set.modules.map((m) => m.info.module)).sort());
      // What each module adds, up · alpha/rank, is what was saved (alpha folded into up outside kohya).
      const scales = (sp: AdapterSpec) => new Map(setList(adapterSetsFor(sp, { family, config })).flatMap((set) => set.modules.map((m) => [m.name, m.scale] as const)));
      const before = scales(s), after = scales(back.spec);
      for (const [k, v] of Object.entries(weights)) {
        const got = back.weights[k];
        expect(got, k).toBeDefined();
        const module = k.slice(0, k.indexOf('.'));
        const isUp = /\.lora_up\.weight$/.test(k);
        const a = v.data as Float32Array, b = got.data as Float32Array;
        let worst = 0;
        for (let i = 0; i < a.length; i++) {
          const x = isUp ? a[i] * before.get(module)! : a[i], y = isUp ? b[i] * after.get(module)! : b[i];
          worst = Math.max(worst, Math.abs(x - y) / (Math.abs(x) + 1e-6));
        }
        expect(worst, k).toBeLessThan(format === 'kohya' ? 1e-12 : 1e-6);
      }
    });
  }

  it('LoKr, kohya (LyCORIS names): ComfyUI consumes every tensor', async () => {
    const s = ditSpec('LoKr', 'attention_ff');
    const tensors = loraFileTensors({ spec: s, family, config, weights: randomWeights(s, family, config), format: 'kohya', dtype: 'F32' });
    for (const name of fx.formats['kohya-lokr']) expect(unconsumed(fx.consumers[name], Object.keys(tensors)), name).toEqual([]);
    expect(() => loraFileTensors({ spec: s, family, config, weights: randomWeights(s, family, config), format: 'ai-toolkit', dtype: 'F32' })).toThrow(/no LoKr/);
  });

  it('the check can fail: an all-linear LoRA names modules some loaders have no name for, and only those', async () => {
    const s = ditSpec('LoRA', 'all_linear');
    const leftOut = new Set<string>();
    for (const format of formats) {
      const keys = Object.keys(loraFileTensors({ spec: s, family, config, weights: randomWeights(s, family, config), format, dtype: 'F32' }));
      for (const name of fx.formats[format]) for (const k of unconsumed(fx.consumers[name], keys)) leftOut.add(`${name}: ${k.replace(/\.(lora_[AB]|lora_down|lora_up)\.weight$|\.alpha$/, '')}`);
    }
    if (id === 'flux2') {
      // ComfyUI's diffusers map and diffusers' kohya converter know no FLUX.2 shared modulation / time embedder names.
      expect(leftOut.size).toBeGreaterThan(0);
      for (const k of leftOut) expect(k).toMatch(/modulation|time_guidance_embed|time_in/);
      expect([...leftOut].some((k) => k.startsWith('comfyui: transformer.double_stream_modulation_img.linear'))).toBe(true);
    }
    // The blocks ai-toolkit trains are never among them.
    for (const k of leftOut) expect(k).not.toMatch(/(attn\.(qkv|proj)|mlp\.[02]|linear[12]|to_[qkv]|to_out|to_qkv_mlp_proj)$/);
  });
});
