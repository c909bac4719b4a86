// graphs/quickstart-video.json as shipped, shortened only in its step counts (4 training steps switching experts
// every 2, 2 sampler steps), run by the executor on the built-in tiny Wan 2.2 I2V experts and the bundled
// bouncing clips: both experts train and Save LoRA writes one file per expert in ai-toolkit's names; the Train
// node's sample strip and the Sampler show the clips as animated WebP (9 frames at 16 fps), which the editor
// plays on the node. eval:quickstart runs the graph at full length and measures what it teaches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { sampleSheetsOf } from '../../nodes/sampling/sheet';
import { QUICKSTART_VIDEO } from '../../scripts/build-graphs';
import { runShipped, shippedGraph } from './shipped-graph';

const dataDir = mkdtempSync(join(tmpdir(), 'lg-quickstart-video-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('graphs/quickstart-video.json', () => {
  it('trains both tiny experts in turn, saves a LoRA per expert, and shows the clips as animated WebP on Train and Sampler', async () => {
    const g = await shippedGraph('quickstart-video.json');
    const [train] = g.idOf('Train'), [sampler] = g.idOf('Sampler'), [settings] = g.idOf('SamplerSettings'), [save] = g.idOf('SaveLora');
    // The shipped graph trains both experts from two Load Models, switching as the issue asks.
    expect(g.api[train!]!.inputs).toMatchObject({ trainStages: 'both', switchEvery: QUICKSTART_VIDEO.switchEvery, lowNoiseModel: [expect.any(String), 0] });
    const { r, paths, seconds } = await runShipped(g, [
      `${train}.steps=4`, `${train}.switchEvery=2`, `${train}.sampleEvery=2`, `${train}.saveName=qv`,
      `${sampler}.steps=2`, `${settings}.steps=2`, `${save}.name=qv`,
    ], dataDir, 'qv');
    console.log(`quickstart-video at 4 training steps ran in ${seconds.toFixed(1)} s`);

    // Each expert took its 2 steps (the boundary is 2.2 I2V's official 0.900).
    expect(r.outputs[train!]!.text).toContain('experts (boundary 0.9): high_noise 2 steps, low_noise 2 steps');

    // One LoRA per expert, ai-toolkit's names, each expert's own (trained) weights.
    const hi = (await loadSafetensors(join(paths.output, 'qv_high_noise.safetensors'))).tensors;
    const lo = (await loadSafetensors(join(paths.output, 'qv_low_noise.safetensors'))).tensors;
    expect([...hi.keys()].sort()).toEqual([...lo.keys()].sort());
    const up = [...hi.keys()].find((k) => /^diffusion_model\.blocks\.0\..*\.lora_B\.weight$/.test(k));
    expect(up, [...hi.keys()].slice(0, 4).join(', ')).toBeDefined();
    const bytes = (t: { data: ArrayBufferView }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    expect(bytes(hi.get(up!)!).equals(bytes(lo.get(up!)!))).toBe(false);

    // The Train node's strip (samples at step 2 and at the end) and the Sampler: animated WebP of 9-frame clips at 16 fps.
    for (const [id, count] of [[train!, 2], [sampler!, 1]] as const) {
      const sheets = sampleSheetsOf(r.outputs[id]);
      expect(sheets, `node ${id}`).toHaveLength(count);
      for (const sheet of sheets) {
        expect(sheet).toMatchObject({ frames: QUICKSTART_VIDEO.frames, fps: 16 });
        expect(sheet.image.filename).toMatch(/\.webp$/);
        const meta = await sharp(join(paths.temp, sheet.image.filename), { animated: true }).metadata();
        expect(meta.pages).toBe(QUICKSTART_VIDEO.frames);
      }
    }
  }, 600_000);
});
