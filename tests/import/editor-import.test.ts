// The editor's choice between opening a graph and importing a config, by file name and content.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isConfigFile } from '../../editor/graph/configFile';
import { repoRoot } from '../../server/paths';

const read = (...p: string[]) => readFileSync(join(repoRoot, ...p), 'utf8');

describe('isConfigFile', () => {
  it('imports YAML and TOML, and JSON that is an ai-toolkit job or a kohya_ss config', () => {
    expect(isConfigFile('job.yaml', '')).toBe(true);
    expect(isConfigFile('dataset.toml', '')).toBe(true);
    expect(isConfigFile('cat.json', read('tests', 'fixtures', 'configs', 'sd15_ai_toolkit.json'))).toBe(true);
    expect(isConfigFile('preset.json', read('tests', 'fixtures', 'configs', 'kohya_locon_sd15.json'))).toBe(true);
  });
  it('opens workflow and API graphs as graphs', () => {
    expect(isConfigFile('quickstart.json', read('graphs', 'quickstart.json'))).toBe(false);
    expect(isConfigFile('api.json', JSON.stringify({ 1: { class_type: 'LoadModel', inputs: {} } }))).toBe(false);
    expect(isConfigFile('broken.json', '{ nope')).toBe(false);
  });
});
