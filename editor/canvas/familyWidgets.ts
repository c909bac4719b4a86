// Greys out the widgets that mean nothing for the model family a node works on (editor/graph/families.ts decides
// which), with the reason at the front of their tooltip. Disabled widgets keep their values, so the saved graph is
// unchanged. Part of the canvas wrapper (GraphCanvas); nothing outside editor/canvas imports litegraph.
import type { LGraph, LGraphNode } from '@comfyorg/litegraph';
import type { ObjectInfo } from '../../server/protocol';
import { familyOf, ownFamily, widgetApplies, type FamilyGraph, type ModelFamilyRef } from '../graph/families';
import type { NodeRun } from '../state/run';

type Links = LGraph['_links'];

function familyGraph(graph: LGraph, objectInfo: ObjectInfo, runs: Readonly<Record<string, NodeRun>>): FamilyGraph {
  const links: Links = graph._links;
  const node = (id: string): LGraphNode | null => graph.getNodeById(Number(id)) ?? graph.getNodeById(id);
  return {
    upstream: (id) => (node(id)?.inputs ?? []).flatMap((i) => (i.link != null && links.get(i.link) ? [String(links.get(i.link)!.origin_id)] : [])),
    downstream: (id) => (node(id)?.outputs ?? []).flatMap((o) => (o.links ?? []).flatMap((l) => (links.get(l) ? [String(links.get(l)!.target_id)] : []))),
    own: (id) => {
      const n = node(id);
      const info = n?.type ? objectInfo[n.type] : undefined;
      if (!n || !info) return undefined;
      return ownFamily(runs[id]?.family, info.widgets, (name) => n.widgets?.find((w) => w.name === name)?.value);
    },
  };
}

/** Disables (or re-enables) family-bound widgets on every node; returns whether anything changed. */
export function syncFamilyWidgets(graph: LGraph, objectInfo: ObjectInfo, runs: Readonly<Record<string, NodeRun>>): boolean {
  const g = familyGraph(graph, objectInfo, runs);
  let changed = false;
  for (const node of graph._nodes) {
    const info = node.type ? objectInfo[node.type] : undefined;
    const bound = info?.widgets.filter((w) => w.families) ?? [];
    if (!bound.length) continue;
    const family: ModelFamilyRef | undefined = familyOf(g, String(node.id));
    for (const spec of bound) {
      const widget = node.widgets?.find((w) => w.name === spec.name);
      if (!widget) continue;
      const verdict = widgetApplies(spec, family);
      const disabled = !verdict.applies;
      const tooltip = verdict.applies ? spec.tooltip : `${verdict.why}${spec.tooltip ? ` — ${spec.tooltip}` : ''}`;
      if (Boolean(widget.disabled) === disabled && widget.tooltip === tooltip) continue;
      widget.disabled = disabled;
      widget.tooltip = tooltip;
      changed = true;
    }
  }
  return changed;
}
