// `--set "<node title or id>.<widget>=<value>"`: changes one widget value in an API graph, parsing the value by
// the widget's declared kind so "steps=500" becomes a number and "flipX=true" a boolean.
import type { NodeRegistry } from '../../nodes/registry';
import type { ApiGraph } from '../protocol';
import { GraphFormatError } from './errors';

export interface WidgetOverride {
  node: string;
  widget: string;
  value: string;
}

export function parseSetArgument(arg: string): WidgetOverride {
  const eq = arg.indexOf('=');
  const lhs = eq < 0 ? '' : arg.slice(0, eq);
  const dot = lhs.lastIndexOf('.');
  if (eq < 0 || dot <= 0 || dot === lhs.length - 1) {
    throw new GraphFormatError(`--set "${arg}": expected "<node title or id>.<widget>=<value>"`);
  }
  return { node: lhs.slice(0, dot), widget: lhs.slice(dot + 1), value: arg.slice(eq + 1) };
}

/** The node ids a title or id names: an id, else nodes whose title (or type's display title) matches. */
export function findNodes(api: ApiGraph, registry: NodeRegistry, name: string): string[] {
  if (api[name]) return [name];
  const titled = Object.entries(api).filter(([, n]) => n._meta?.title === name).map(([id]) => id);
  if (titled.length) return titled;
  return Object.entries(api)
    .filter(([, n]) => !n._meta?.title && (registry.get(n.class_type)?.title === name || n.class_type === name))
    .map(([id]) => id);
}

export function applyOverrides(api: ApiGraph, registry: NodeRegistry, overrides: WidgetOverride[]): ApiGraph {
  const out: ApiGraph = structuredClone(api);
  for (const o of overrides) {
    const ids = findNodes(out, registry, o.node);
    if (ids.length === 0) throw new GraphFormatError(`--set: no node titled or with id "${o.node}"`);
    if (ids.length > 1) throw new GraphFormatError(`--set: "${o.node}" names several nodes (ids ${ids.join(', ')}); use an id`);
    const node = out[ids[0]!]!;
    const def = registry.get(node.class_type);
    if (!def) throw new GraphFormatError(`--set: node "${o.node}" has unknown type ${node.class_type}`);
    const info = def.info().widgets.find((w) => w.name === o.widget);
    if (!info) {
      throw new GraphFormatError(`--set: ${def.type} has no widget "${o.widget}" (widgets: ${def.widgetNames.join(', ') || 'none'})`);
    }
    node.inputs[o.widget] = parseWidgetText(o.value, info.kind, `${o.node}.${o.widget}`);
  }
  return out;
}

function parseWidgetText(text: string, kind: string, where: string): unknown {
  switch (kind) {
    case 'int':
    case 'float':
    case 'seed': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw new GraphFormatError(`--set ${where}: "${text}" is not a number`);
      return n;
    }
    case 'toggle':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      throw new GraphFormatError(`--set ${where}: "${text}" is not true or false`);
    default:
      return text;
  }
}
