// Builds one litegraph node class per server node type from /api/object_info: its sockets, and widgets that
// follow the schema (numbers with min/max/step, combos, multi-line text for prompts, toggles, path pickers).
// Part of the canvas wrapper (GraphCanvas); nothing outside editor/canvas imports litegraph.
import { LGraphNode, LiteGraph, type IWidget } from '@comfyorg/litegraph';
import { WIDGET_NAMES_PROPERTY, type NodeInfo, type ObjectInfo, type WidgetInfo } from '../../server/protocol';

export interface NodeTypeHooks {
  /** Files a path widget of this kind may pick (what the server lists for it). */
  pathChoices(kind: string): readonly string[];
  /** A widget value changed (for undo and remembering the graph). */
  changed(): void;
  /** Installs live-state drawing and clicks on a new node. */
  decorate(node: LGraphNode, info: NodeInfo): void;
}

/** A list socket shows as "name", "name.1", "name.2"…: one free slot more than it has links. */
const listSlotName = (base: string, k: number) => (k === 0 ? base : `${base}.${k}`);

function decimals(step: number | undefined): number {
  if (!step || step >= 1) return 0;
  return Math.min(6, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

function defaultValue(w: WidgetInfo): unknown {
  if (w.default !== undefined) return w.default;
  switch (w.kind) {
    case 'int':
    case 'float':
    case 'seed':
      return w.min ?? 0;
    case 'toggle':
      return false;
    case 'combo':
      return w.options?.[0] ?? '';
    default:
      return '';
  }
}

function addWidgetFor(node: LGraphNode, w: WidgetInfo, hooks: NodeTypeHooks): void {
  const value = defaultValue(w);
  let widget: IWidget;
  const changed = () => hooks.changed();
  switch (w.kind) {
    case 'int':
    case 'seed':
    case 'float': {
      const integral = w.kind !== 'float';
      const step = w.step ?? (integral ? 1 : 0.01);
      const places = integral ? 0 : Math.max(decimals(step), 2);
      // litegraph keeps whatever the drag produced; the schema wants ints as ints and floats without 0.1+0.2 noise.
      const round = (v: number) => {
        widget.value = integral ? Math.round(v) : Number(v.toFixed(Math.max(places, 6)));
        changed();
      };
      widget = node.addWidget('number', w.name, value as number, round, { min: w.min, max: w.max, step2: step, precision: places }) as IWidget;
      break;
    }
    case 'toggle':
      widget = node.addWidget('toggle', w.name, Boolean(value), changed, {}) as IWidget;
      break;
    case 'combo':
      widget = node.addWidget('combo', w.name, String(value), changed, { values: w.options ?? [] }) as IWidget;
      break;
    case 'path': {
      const kind = w.pathKind ?? 'input';
      // Lists what the server may read for this kind; the current value stays pickable even when not (yet) there.
      const values = (wd?: { value?: unknown }) => {
        const listed = [...hooks.pathChoices(kind)];
        const current = typeof wd?.value === 'string' ? wd.value : '';
        return current && !listed.includes(current) ? [current, ...listed] : listed.length ? listed : [current];
      };
      widget = node.addWidget('combo', w.name, String(value), changed, { values: values as never }) as IWidget;
      break;
    }
    default:
      widget = node.addWidget('text', w.name, String(value ?? ''), changed, { multiline: w.multiline ?? false }) as IWidget;
      break;
  }
  if (w.tooltip) widget.tooltip = w.tooltip;
}

export function registerNodeTypes(objectInfo: ObjectInfo, hooks: NodeTypeHooks): void {
  for (const info of Object.values(objectInfo)) {
    const listInputs = info.inputs.filter((i) => i.list);
    class ServerNode extends LGraphNode {
      static override title = info.title;
      static description = info.description;
      constructor(title?: string) {
        super(title ?? info.title, info.type);
        for (const i of info.inputs) this.addInput(i.name, i.type);
        for (const o of info.outputs) this.addOutput(o.name, o.type);
        for (const w of info.widgets) addWidgetFor(this, w, hooks);
        this.serialize_widgets = true;
        // Saved beside widgets_values so a graph keeps its values when a node type gains a widget later.
        this.properties = { ...this.properties, [WIDGET_NAMES_PROPERTY]: info.widgets.map((w) => w.name) };
        const size = this.computeSize();
        this.size = [Math.max(size[0], 240), size[1]];
        hooks.decorate(this, info);
      }
    }
    // litegraph restores widgets_values by position; when the file names its widgets, restore by name instead.
    ServerNode.prototype.onConfigure = function (this: LGraphNode, data: { widgets_values?: unknown[]; properties?: Record<string, unknown> }) {
      const written = data.properties?.[WIDGET_NAMES_PROPERTY];
      const values = data.widgets_values;
      if (Array.isArray(written) && Array.isArray(values) && written.length === values.length) {
        for (const widget of this.widgets ?? []) {
          const at = written.indexOf(widget.name);
          const def = info.widgets.find((w) => w.name === widget.name);
          widget.value = (at >= 0 ? values[at] : def?.default ?? widget.value) as never;
        }
      }
      this.properties = { ...this.properties, [WIDGET_NAMES_PROPERTY]: info.widgets.map((w) => w.name) };
    };
    if (listInputs.length) {
      // Adds a free slot at the end of a list socket once all are linked, so another dataset can be plugged in.
      ServerNode.prototype.onConnectionsChange = function (this: LGraphNode) {
        for (const spec of listInputs) {
          const slots = (this.inputs ?? []).filter((s) => s.name === spec.name || s.name.startsWith(`${spec.name}.`));
          if (slots.every((s) => s.link != null)) this.addInput(listSlotName(spec.name, slots.length), spec.type);
        }
      };
    }
    LiteGraph.registerNodeType(info.type, ServerNode);
    (ServerNode as unknown as { category: string }).category = info.category;
  }
}
