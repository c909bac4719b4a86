// The mapping tables' shape and the one loop that applies them: each key of a file is matched to a rule (source
// key → node widget + conversion + meaning note), applied, and reported — so the report is derived from the same
// tables that build the graph, and a key no rule names is reported as not supported.
import type { FamilyInfo } from './families';
import { Plan, WidgetValueError, type WidgetRef } from './plan';
import { ReportBuilder, type KeyStatus } from './report';

export interface RuleContext {
  plan: Plan;
  family: FamilyInfo;
  /** The object the rule's key sits in (a process, a dataset entry, a kohya config): for rules that read neighbours. */
  scope: Record<string, unknown>;
  /** Which Dataset node(s) a dataset-scope key reaches. */
  datasets: number[];
  /** Sets a widget (on every reached Dataset node for `dataset.*`) and returns the report's target labels. */
  set(ref: WidgetRef, value: unknown): string[];
}

export interface Outcome {
  status?: KeyStatus;
  targets?: string[];
  note?: string;
}

export interface Rule {
  /** The key relative to its scope: `train.lr`, `optimizer_params.weight_decay`; `*` matches any one segment. */
  key: string;
  /** The widget it sets, with `convert` applied to the value (identity when absent). */
  to?: WidgetRef;
  convert?: (value: any, c: RuleContext) => unknown;
  /** For keys whose value reaches several widgets or depends on neighbours. */
  apply?: (value: any, c: RuleContext) => Outcome;
  /** Without `to`/`apply`: unsupported (the default) or ignored. With them: changed, when the meaning shifts. */
  status?: KeyStatus;
  note?: string | ((value: any, c: RuleContext) => string | undefined);
  /** The format's own default: an unsupported key left at it loses nothing (reported as ignored). */
  default?: unknown;
}

export const isUnset = (v: unknown) => v === null || v === undefined || v === '' || v === false || (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);

const matches = (pattern: string, key: string) => {
  const p = pattern.split('.'), k = key.split('.');
  return p.length === k.length && p.every((seg, i) => seg === '*' || seg === k[i]);
};

export function findRule(rules: readonly Rule[], key: string): Rule | undefined {
  return rules.find((r) => matches(r.key, key));
}

/**
 * Applies one key. `fullKey` is its path in the file (the report's key), `key` its path within the scope (the
 * table's key). A value a widget cannot take is reported as unsupported with the schema's reason.
 */
export function applyKey(rules: readonly Rule[], report: ReportBuilder, fullKey: string, key: string, value: unknown, c: Omit<RuleContext, 'set'>): void {
  const rule = findRule(rules, key);
  const ctx: RuleContext = {
    ...c,
    set: (ref, v) => (ref.startsWith('dataset.') ? c.datasets.map((i) => c.plan.set(ref, v, i)) : [c.plan.set(ref, v)]),
  };
  const noteOf = (r: Rule) => (typeof r.note === 'function' ? r.note(value, ctx) : r.note);
  if (!rule) {
    report.add(fullKey, value, isUnset(value) ? 'ignored' : 'unsupported', [], isUnset(value) ? 'unset' : 'no counterpart in loragraph');
    return;
  }
  try {
    if (rule.apply) {
      const o = rule.apply(value, ctx);
      report.add(fullKey, value, o.status ?? (o.targets?.length ? rule.status ?? 'mapped' : 'unsupported'), o.targets ?? [], o.note ?? noteOf(rule));
    } else if (rule.to) {
      const targets = ctx.set(rule.to, rule.convert ? rule.convert(value, ctx) : value);
      report.add(fullKey, value, rule.status ?? 'mapped', targets, noteOf(rule));
    } else {
      const status = rule.status ?? 'unsupported';
      // An unsupported setting left unset loses nothing.
      if (status === 'unsupported' && (isUnset(value) || ('default' in rule && atDefault(value, rule.default)))) {
        report.add(fullKey, value, 'ignored', [], isUnset(value) ? 'unset' : 'at its default');
      }
      else report.add(fullKey, value, status, [], noteOf(rule) ?? (status === 'unsupported' ? 'no counterpart in loragraph' : undefined));
    }
  } catch (e) {
    if (!(e instanceof WidgetValueError) && !(e instanceof UnsupportedValue)) throw e;
    report.add(fullKey, value, 'unsupported', [], e.message);
  }
}

/** kohya writes numbers as strings ("75"), so a default compares as a number when it is one. */
const atDefault = (value: unknown, def: unknown) =>
  JSON.stringify(value) === JSON.stringify(def) || (typeof def === 'number' && typeof value === 'string' && value.trim() !== '' && Number(value) === def);

/** Thrown by a conversion for a value with no counterpart (an optimizer loragraph lacks): reported, not fatal. */
export class UnsupportedValue extends Error {}
