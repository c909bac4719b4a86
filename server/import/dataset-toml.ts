// sd-scripts dataset config TOML (`--dataset_config`): [general], [[datasets]], [[datasets.subsets]]. Each subset
// becomes a Dataset node; a setting is resolved as kohya does — the subset's own value, else its dataset's, else
// [general]'s, else the command line's (the --config_file options), else sd-scripts' default. A key sd-scripts
// would reject (unknown, or at a level it is not allowed) is an error naming file, line and key, as kohya's is.
import type { ProjectPaths } from '../paths';
import type { FamilyInfo } from './families';
import { KOHYA_RULES, kohyaNumber } from './kohya';
import { Plan } from './plan';
import { ReportBuilder } from './report';
import { applyKey, type Rule } from './rules';
import { ConfigImportError, leaves, type ParsedSource } from './source';
import { toProjectPath } from './paths';

type Level = 'subset' | 'dataset' | 'any';

/** Where each key may sit (sd-scripts library/config_util.py ConfigSanitizer). */
const LEVELS: Record<string, Level> = {
  // subset-ascendable: anywhere
  color_aug: 'any', face_crop_aug_range: 'any', flip_aug: 'any', num_repeats: 'any', random_crop: 'any', shuffle_caption: 'any',
  keep_tokens: 'any', keep_tokens_separator: 'any', secondary_separator: 'any', caption_separator: 'any', enable_wildcard: 'any',
  token_warmup_min: 'any', token_warmup_step: 'any', caption_prefix: 'any', caption_suffix: 'any', custom_attributes: 'any', resize_interpolation: 'any',
  caption_dropout_every_n_epochs: 'any', caption_dropout_rate: 'any', caption_tag_dropout_rate: 'any',
  caption_extension: 'any', class_tokens: 'any', cache_info: 'any',
  // subset-only
  image_dir: 'subset', is_reg: 'subset', alpha_mask: 'subset', metadata_file: 'subset', conditioning_data_dir: 'subset',
  // dataset-ascendable: [general] and [[datasets]]
  batch_size: 'dataset', bucket_no_upscale: 'dataset', bucket_reso_steps: 'dataset', enable_bucket: 'dataset', max_bucket_reso: 'dataset',
  min_bucket_reso: 'dataset', validation_seed: 'dataset', validation_split: 'dataset', resolution: 'dataset', network_multiplier: 'dataset',
};

export const DATASET_TOML_RULES: Rule[] = [
  {
    key: 'image_dir',
    apply: (v, c) => {
      const m = toProjectPath(String(v), 'datasets', (c as unknown as { paths?: ProjectPaths }).paths?.datasets);
      return { targets: c.datasets.map((i) => c.plan.set('dataset.folder', m.value, i)), ...(m.changed ? { status: 'changed' as const, note: m.note } : {}) };
    },
  },
  { key: 'num_repeats', apply: (v, c) => ({ targets: c.set('dataset.repeats', kohyaNumber(v)) }) },
  { key: 'class_tokens', to: 'dataset.defaultCaption', note: 'the caption of images without a caption file' },
  { key: 'is_reg', to: 'dataset.isRegularization' },
  {
    key: 'batch_size',
    apply: (v, c) => {
      const prev = c.plan.get('train.batchSize');
      const targets = c.set('train.batchSize', kohyaNumber(v));
      return prev !== undefined && prev !== v ? { status: 'changed', targets, note: `kohya batches each dataset on its own; Train has one batch size (was ${prev})` } : { targets };
    },
  },
  { key: 'cache_info', status: 'ignored', note: 'a loading speed-up' },
  ...['metadata_file', 'conditioning_data_dir'].map((k): Rule => ({ key: k, status: 'unsupported', note: 'fine-tuning / ControlNet datasets' })),
  ...['enable_wildcard', 'validation_seed', 'validation_split', 'token_warmup_min', 'token_warmup_step', 'network_multiplier', 'resize_interpolation', 'face_crop_aug_range'].map((k): Rule => ({ key: k, status: 'unsupported', default: k === 'network_multiplier' || k === 'token_warmup_min' ? 1 : k === 'enable_wildcard' ? false : 0 })),
  { key: 'custom_attributes.*', status: 'unsupported' },
  ...KOHYA_RULES,
];

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/**
 * Adds one Dataset node per subset to `plan` and reports every key of the dataset file. `argparse` holds the
 * --config_file options that fall back under [general] (key → where it was read and its value); `prefix` goes in
 * front of this file's keys when its entries share a report with the config file.
 */
export function importDatasetToml(
  source: ParsedSource, plan: Plan, family: FamilyInfo,
  opts: { paths?: ProjectPaths; argparse?: Record<string, { key: string; value: unknown }>; report?: ReportBuilder; prefix?: string } = {},
): ReportBuilder {
  const prefix = opts.prefix ?? (opts.report ? `${source.file}:` : '');
  const report = opts.report ?? new ReportBuilder(source.lineOf);
  if (opts.report) report.addSource(prefix, source.lineOf);
  const lineOf = (key: string) => source.lineOf(key);
  const data = obj(source.data);
  const reject = (key: string, why: string) => { throw new ConfigImportError(source.file, why, lineOf(key), undefined, key.split('.').pop()!.replace(/\[\d+\]$/, '')); };
  for (const k of Object.keys(data)) if (k !== 'general' && k !== 'datasets') reject(k, `unknown section "${k}" (sd-scripts dataset configs have [general] and [[datasets]])`);
  const check = (table: Record<string, unknown>, at: string, level: 'general' | 'dataset' | 'subset') => {
    for (const k of Object.keys(table)) {
      if (level === 'dataset' && k === 'subsets') continue;
      const allowed = LEVELS[k];
      const where = at ? `${at}.${k}` : k;
      if (!allowed) reject(where, `unknown key "${k}": sd-scripts rejects it (extra keys not allowed)`);
      if (allowed === 'subset' && level !== 'subset') reject(where, `"${k}" belongs in [[datasets.subsets]], not ${level === 'general' ? '[general]' : '[[datasets]]'}`);
      if (allowed === 'dataset' && level === 'subset') reject(where, `"${k}" belongs in [[datasets]] or [general], not in a subset`);
    }
  };
  const general = obj(data.general);
  check(general, 'general', 'general');
  const datasets = Array.isArray(data.datasets) ? data.datasets.map(obj) : [];
  datasets.forEach((d, i) => {
    check(d, `datasets[${i}]`, 'dataset');
    (Array.isArray(d.subsets) ? d.subsets.map(obj) : []).forEach((s, j) => {
      check(s, `datasets[${i}].subsets[${j}]`, 'subset');
      if (s.image_dir === undefined && s.metadata_file === undefined) reject(`datasets[${i}].subsets[${j}]`, 'a subset needs image_dir (sd-scripts requires it)');
    });
  });

  // One node per subset; for each, which key path supplies each setting (the fallback chain).
  const sourceOf = new Map<string, number[]>(); // key path → nodes it is effective for
  const start = plan.datasets.length;
  let n = start;
  datasets.forEach((d, i) => {
    const subsets = Array.isArray(d.subsets) ? d.subsets.map(obj) : [];
    subsets.forEach((s, j) => {
      const node = n++;
      plan.dataset(node);
      plan.set('dataset.captionExtension', '.caption', node); // sd-scripts' DreamBooth default
      for (const key of new Set([...Object.keys(LEVELS), ...Object.keys(opts.argparse ?? {})])) {
        const path = key in s ? `datasets[${i}].subsets[${j}].${key}` : key in d ? `datasets[${i}].${key}` : key in general ? `general.${key}` : opts.argparse?.[key] ? `@${opts.argparse[key]!.key}` : undefined;
        if (path) sourceOf.set(path, [...(sourceOf.get(path) ?? []), node]);
      }
    });
  });

  const apply = (reportKey: string, path: string, key: string, value: unknown, scope: Record<string, unknown>) => {
    const nodes = sourceOf.get(path) ?? [];
    if (!nodes.length) {
      report.add(reportKey, value, 'ignored', [], 'overridden at every subset (or no subsets)');
      return;
    }
    applyKey(DATASET_TOML_RULES, report, reportKey, key, value, { plan, family, scope, datasets: nodes, paths: opts.paths } as never);
  };
  // The command line's options first, so the file's own values (more specific) are set after them.
  for (const [key, a] of Object.entries(opts.argparse ?? {})) apply(a.key, `@${a.key}`, key, a.value, {});
  for (const [path, value] of leaves(data)) {
    const key = path.replace(/^general\.|^datasets\[\d+\]\.(subsets\[\d+\]\.)?/, '');
    const first = key.split('.')[0]!;
    apply(`${prefix}${path}`, LEVELS[first] && key.includes('.') ? path.slice(0, path.length - key.length) + first : path, key, value, {});
  }
  if (n === start) report.notes.push(`${source.file}: no [[datasets.subsets]]: add a Dataset node before running`);
  return report;
}
