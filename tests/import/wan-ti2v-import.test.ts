// ai-toolkit's dataset `do_i2v` (image-to-video on models that do both: Wan 2.2 TI2V-5B) maps to the
// Dataset's imageToVideo, and the export writes it back when it is off (ai-toolkit's default is on).
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry, type NodeRegistry } from '../../nodes/registry';
import { exportAiToolkit } from '../../server/import/export-ai-toolkit';
import { importConfigText, type ImportResult } from '../../server/import/index';

const job = (doI2v?: boolean) => `job: extension
config:
  name: "ti2v"
  process:
    - type: 'sd_trainer'
      network: { type: "lora", linear: 16, linear_alpha: 16 }
      datasets:
        - folder_path: "/path/to/clips"
          num_frames: 33
          resolution: [ 512 ]${doI2v === undefined ? '' : `\n          do_i2v: ${doI2v}`}
      train: { steps: 100, lr: 1e-4 }
      model: { name_or_path: "Wan-AI/Wan2.2-TI2V-5B-Diffusers", arch: 'wan22_5b' }
`;

let registry: NodeRegistry;
beforeAll(async () => { registry = await loadRegistry(); });
const dataset = (r: ImportResult) => Object.values(r.api).find((n) => n.class_type === 'Dataset')!.inputs;

describe('ai-toolkit do_i2v', () => {
  it('imports to Dataset.imageToVideo (absent: the default, on) and exports back when off', async () => {
    expect((await importConfigText('a.yaml', job(false), registry)).report.entries.find((e) => e.key.endsWith('do_i2v'))).toMatchObject({ status: 'mapped', targets: ['Dataset 1.imageToVideo'] });
    const off = await importConfigText('a.yaml', job(false), registry);
    expect(dataset(off).imageToVideo).toBe(false);
    expect(dataset(await importConfigText('b.yaml', job(true), registry)).imageToVideo).toBe(true);
    expect(dataset(await importConfigText('c.yaml', job(), registry)).imageToVideo).toBeUndefined();
    const out = exportAiToolkit(off.api, registry, { arch: 'wan22_5b' });
    expect(out.yaml).toMatch(/do_i2v: false/);
    expect(dataset(await importConfigText('d.yaml', out.yaml, registry)).imageToVideo).toBe(false);
    expect(exportAiToolkit((await importConfigText('e.yaml', job(true), registry)).api, registry, { arch: 'wan22_5b' }).yaml).not.toMatch(/do_i2v/);
  });
});
