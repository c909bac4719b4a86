// Which model family a node works on, and which of its widgets mean nothing for that family — plain functions over
// the graph's links, so the canvas can grey out (not remove: the graph keeps their values) e.g. SD's clip skip on a
// FLUX graph. A node's family is the one flowing into it: the nearest node upstream that names one, either by what
// it reported after it ran (Load Model's `ui.family`) or by a widget declared `choosesFamily` set to other than
// 'auto'. A node with no model upstream (Sampler Settings) takes the family of the nodes it feeds.
import type { WidgetInfo } from '../../server/protocol';

export interface ModelFamilyRef {
  id: string;
  /** As the server names it ('FLUX.2 [klein]'); the id when only a widget named it. */
  label: string;
}

/** The graph as far as families are concerned: links both ways, and what a node says about its own family. */
export interface FamilyGraph {
  /** Nodes whose outputs feed this node's inputs, in input order. */
  upstream(id: string): readonly string[];
  /** Nodes this node's outputs feed. */
  downstream(id: string): readonly string[];
  /** The family the node itself names, if any. */
  own(id: string): ModelFamilyRef | undefined;
}

/** The family a node itself names: what the server reported after it ran, else its family-choice widget when set. */
export function ownFamily(reported: ModelFamilyRef | undefined, widgets: readonly WidgetInfo[], valueOf: (name: string) => unknown): ModelFamilyRef | undefined {
  if (reported) return reported;
  for (const w of widgets) {
    if (!w.choosesFamily) continue;
    const v = valueOf(w.name);
    if (typeof v === 'string' && v !== 'auto' && v !== '') return { id: v, label: v };
  }
  return undefined;
}

/** The nearest family upstream of `id` (itself first), breadth first. */
function upstreamFamily(g: FamilyGraph, id: string): ModelFamilyRef | undefined {
  const seen = new Set([id]);
  let frontier = [id];
  while (frontier.length) {
    for (const n of frontier) {
      const f = g.own(n);
      if (f) return f;
    }
    const next: string[] = [];
    for (const n of frontier) for (const u of g.upstream(n)) if (!seen.has(u)) { seen.add(u); next.push(u); }
    frontier = next;
  }
  return undefined;
}

/** The family a node works on: flowing into it, else (no model upstream) that of the first node it feeds that has one. */
export function familyOf(g: FamilyGraph, id: string): ModelFamilyRef | undefined {
  const up = upstreamFamily(g, id);
  if (up) return up;
  const seen = new Set([id]);
  let frontier = [id];
  while (frontier.length) {
    const next: string[] = [];
    for (const n of frontier) for (const d of g.downstream(n)) if (!seen.has(d)) { seen.add(d); next.push(d); }
    for (const d of next) {
      const f = upstreamFamily(g, d);
      if (f) return f;
    }
    frontier = next;
  }
  return undefined;
}

/**
 * Whether a widget applies on a node of `family`, and if not, why (for its tooltip). Unknown family or an
 * unannotated widget: it applies.
 */
export function widgetApplies(w: WidgetInfo, family: ModelFamilyRef | undefined): { applies: true } | { applies: false; why: string } {
  if (!family || !w.families || w.families.includes(family.id)) return { applies: true };
  return { applies: false, why: `not used by ${family.label} models (only ${w.families.join(', ')})` };
}
