// LoRA Target: widgets in kohya's words; with a MODEL connected, the trainable-parameter count equals the
// AdapterSets' and the predicted file size equals the size of the file Save LoRA writes.
import { describe, it, expect, beforeAll } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import loraTargetNode from '../../nodes/lora-target';
import { adapterSetsFor, setList, kohyaFileBytes } from '../../nodes/models/adapters';
import { saveLoraFile } from '../../nodes/models/lora-file';
import type { ModelValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { adapterSpec, loadTiny, randomWeights } from './training-fixture';

const { ctx, root } = nodeContext();
let model: ModelValue;
beforeAll(async () => { ({ model } = await loadTiny(ctx)); });

describe('LoRA Target node', () => {
  it('offers LoRA / LoCon / LoKr and the target presets', () => {
    const info = loraTargetNode.info();
    expect(info.widgets.find((w) => w.name === 'networkType')!.options).toEqual(['LoRA', 'LoCon', 'LoKr']);
    expect(info.widgets.find((w) => w.name === 'targetPreset')!.options).toEqual(['attention', 'attention_ff', 'all_linear', 'all_linear_conv']);
    expect(info.widgets.find((w) => w.name === 'include')!.multiline).toBe(true);
  });

  for (const [algo, extra] of [['LoRA', { trainTextEncoder: true }], ['LoCon', {}], ['LoKr', { rank: 4 }]] as const) {
    it(`${algo}: parameter count matches the adapter sets and the file size matches the saved file`, async () => {
      const { spec, ui } = await adapterSpec(ctx, { networkType: algo, rank: 4, alpha: 2, ...extra }, model);
      const sets = adapterSetsFor(spec, model);
      const count = setList(sets).reduce((n, s) => n + s.trainableCount, 0);
      expect(ui.trainableParams).toBe(count);
      expect(ui.text![1]).toContain(`${count.toLocaleString('en-US')} trainable parameters`);
      if (algo === 'LoCon') expect(sets.denoiser.modules.some((m) => m.info.kind === 'conv' && m.info.kernel[0] === 3)).toBe(true);
      if (algo === 'LoRA') expect(sets.text[0].modules.length).toBeGreaterThan(0);
      const file = join(root, `${algo}.safetensors`);
      await saveLoraFile(file, { spec, config: model.config, weights: randomWeights(spec, model), format: 'kohya', dtype: 'F16', metadata: {} });
      expect(statSync(file).size).toBe(ui.fileBytes);
      expect(kohyaFileBytes(sets, 'F16')).toBe(ui.fileBytes);
    });
  }

  it('narrows by include/exclude patterns and names bad input', async () => {
    const all = (await adapterSpec(ctx, { targetPreset: 'attention' }, model)).ui.trainableParams as number;
    const up = (await adapterSpec(ctx, { targetPreset: 'attention', include: 'up_blocks.*\n# a comment' }, model)).ui.trainableParams as number;
    const noAttn2 = (await adapterSpec(ctx, { targetPreset: 'attention', exclude: '*attn2*' }, model)).ui.trainableParams as number;
    expect(up).toBeGreaterThan(0);
    expect(up).toBeLessThan(all);
    expect(noAttn2).toBeLessThan(all);
    await expect(adapterSpec(ctx, { include: '/([/' })).rejects.toThrow(/^include: target pattern/);
    await expect(adapterSpec(ctx, { networkType: 'LoKr', dropout: 0.1 })).rejects.toThrow(/^dropout:/);
    await expect(adapterSpec(ctx, { include: 'no_such_module' }, model)).rejects.toThrow(/select no UNet module/);
  });
});
