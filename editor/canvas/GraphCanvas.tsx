// The one component that wraps litegraph: it mounts the canvas once, registers node types from the node library,
// draws live job state from the store onto nodes, keeps undo history and the remembered graph, refuses invalid
// links with a hint, and hands the rest of the editor a CanvasController that speaks plain workflow data.
import '@comfyorg/litegraph/style.css';
import { LGraph, LGraphCanvas, LGraphGroup, LGraphNode, LiteGraph, type ISerialisedGraph } from '@comfyorg/litegraph';
import { useEffect, useRef, useState } from 'react';
import { createPortal } from 'react-dom';
import type { NodeInfo, Workflow } from '../../server/protocol';
import { LossChart } from '../panels/LossChart';
import { editorStore, openLightbox, openSamplesView, showHint } from '../state/editor';
import { useStore } from '../state/store';
import { UndoHistory } from '../graph/undo';
import type { CanvasController, ScreenPoint } from './controller';
import { drawLive, imageAt, imageState, liveMargin, onImageLoaded, previewLayout, type LiveView } from './drawLive';
import { tileRect } from './nodeImages';
import { clipState, frameChanged, mayBeAnimated, onClipDecoded } from './animatedImages';
import { growAndPush, type Box } from './pushLayout';
import { installAreaRedraw, type AreaRedraw } from './areaRedraw';
import { installPanBlit, type PanBlit } from './panBlit';
import { registerNodeTypes } from './nodeTypes';
import { syncFamilyWidgets } from './familyWidgets';

export interface GraphCanvasProps {
  onReady(controller: CanvasController): void;
  /** The graph changed by a user action (after it settled). */
  onChange(workflow: Workflow): void;
  onOpenSearch(at: ScreenPoint, query: string): void;
}

/** The graph without what only the view, the stacking order or the revision counter changes, for comparing versions. */
function comparable(wf: Workflow): string {
  const { extra, revision, ...rest } = wf as Workflow & { extra?: Record<string, unknown>; revision?: unknown };
  const { ds, ...extraRest } = extra ?? {};
  // Clicking a node brings it to the front, which reorders the node list; that is not an edit.
  const nodes = [...wf.nodes].sort((a, b) => String(a.id).localeCompare(String(b.id), undefined, { numeric: true }));
  return JSON.stringify({ ...rest, nodes, extra: extraRest });
}

function serialise(graph: LGraph): Workflow {
  // JSON round trip drops undefined fields, so a saved file and the in-memory graph compare equal.
  return JSON.parse(JSON.stringify(graph.serialize())) as Workflow;
}

export function GraphCanvas(props: GraphCanvasProps) {
  const hostRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const overlayRefs = useRef(new Map<string, HTMLDivElement>());
  const lgRef = useRef<{ graph: LGraph; canvas: LGraphCanvas; pan: PanBlit; area: AreaRedraw } | null>(null);
  const propsRef = useRef(props);
  propsRef.current = props;
  const objectInfo = useStore(editorStore, (s) => s.objectInfo);
  const lossNodes = useStore(editorStore, (s) =>
    Object.entries(s.run.nodes)
      .filter(([, n]) => n.loss.length > 0)
      .map(([id]) => id)
      .join(','),
  );
  const [tooltip, setTooltip] = useState<{ x: number; y: number; text: string } | null>(null);
  const controllerRef = useRef<CanvasController | null>(null);
  const checkpointRef = useRef<() => void>(() => {});

  // Mount litegraph once.
  useEffect(() => {
    const el = canvasRef.current!;
    const host = hostRef.current!;
    // Letting go of a link on empty canvas just drops it (disconnects), as people expect when pulling a link off.
    LiteGraph.release_link_on_empty_shows_menu = false;
    const graph = new LGraph();
    const canvas = new LGraphCanvas(el, graph);
    canvas.allow_searchbox = false;
    canvas.render_canvas_border = false;
    canvas.show_info = false;
    // Cheaper strokes on a CPU-rendered canvas: link borders and node shadows cost more than they show.
    canvas.render_connections_border = false;
    canvas.render_shadows = false;
    // Live state redraws only the nodes it changed (areaRedraw); a drag moves a picture (panBlit, drawing through
    // areaRedraw). The loss-chart overlays are placed while litegraph draws (placeOverlays, below) and after each
    // moved frame.
    const area = installAreaRedraw(canvas);
    const pan = installPanBlit(canvas, { afterMove: () => placeOverlays() });
    lgRef.current = { graph, canvas, pan, area };
    // Everything here that changes what is drawn goes through redraw, so a drag in progress stops moving old pixels.
    // Live state draws on nodes only (the front canvas): it leaves the grid and the links (the back canvas) as they
    // are, and redrawing those costs as much again.
    const redraw = (links = true) => {
      pan.invalidate();
      canvas.setDirty(true, links);
    };
    /** Redraws where a node draws, live state before and after a change included. */
    const redrawNode = (node: LGraphNode, ...views: LiveView[]) => {
      pan.invalidate();
      const [x, y, w, h] = node.renderArea;
      const m = views.map((v) => liveMargin(node, v));
      const most = (side: 'top' | 'right' | 'bottom' | 'left') => Math.max(0, ...m.map((e) => e[side]));
      area.add([x - most('left'), y - most('top'), w + most('left') + most('right'), h + most('top') + most('bottom')]);
    };

    // Nodes are culled by all they draw, live state included (a progress bar above the title, an error box below).
    canvas.computeVisibleNodes = function (nodes, out = []) {
      out.length = 0;
      const [ax, ay, aw, ah] = this.visible_area;
      const { run } = editorStore.get();
      for (const node of nodes ?? graph._nodes) {
        node.updateArea(this.ctx);
        const [x, y, w, h] = node.renderArea;
        const id = String(node.id);
        const m = run.nodes[id] || run.validation[id] ? liveMargin(node, { run: run.nodes[id], validation: run.validation[id] }) : null;
        const left = x - (m?.left ?? 0), top = y - (m?.top ?? 0);
        const right = x + w + (m?.right ?? 0), bottom = y + h + (m?.bottom ?? 0);
        if (left < ax + aw && right > ax && top < ay + ah && bottom > ay) out.push(node);
      }
      return out;
    };
    // Links are culled by the box around their two ends, but a spline swings out sideways beyond it by up to a
    // quarter of its length (its control points sit that far out from each end, left and right: sockets here are on
    // the sides of nodes). Widen the area by that for links: a curve whose ends are both out of view — or out of a
    // band of a drag's picture — is still drawn where it shows.
    const drawConnections = canvas.drawConnections;
    canvas.drawConnections = function (ctx) {
      let longest = 0;
      for (const link of graph._links.values()) {
        const from = graph.getNodeById(link.origin_id), to = graph.getNodeById(link.target_id);
        if (!from || !to) continue;
        const [ax, ay] = from.getOutputPos(link.origin_slot), [bx, by] = to.getInputPos(link.target_slot);
        longest = Math.max(longest, Math.hypot(bx - ax, by - ay));
      }
      const area = this.visible_area;
      const saved = [area[0], area[1], area[2], area[3]];
      const swing = longest / 4;
      area[0] -= swing;
      area[2] += 2 * swing;
      try {
        drawConnections.call(this, ctx);
      } finally {
        [area[0], area[1], area[2], area[3]] = saved as [number, number, number, number];
      }
    };
    // Frames the whole graph (with room for progress bars above titles and a margin), at most at 100 %.
    const fit = () => {
      if (!graph._nodes.length) return;
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const n of graph._nodes) {
        x0 = Math.min(x0, n.pos[0]);
        y0 = Math.min(y0, n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT - 30);
        x1 = Math.max(x1, n.pos[0] + n.size[0]);
        y1 = Math.max(y1, n.pos[1] + n.size[1]);
      }
      canvas.ds.fitToBounds([x0 - 40, y0 - 40, x1 - x0 + 80, y1 - y0 + 80], { zoom: 0.97 });
      if (canvas.ds.scale > 1) canvas.ds.scale = 1;
      redraw();
    };

    // The canvas holds a pixel per device pixel (sharp on high-density screens) and litegraph draws in CSS pixels: it
    // scales the background canvas by devicePixelRatio itself and expects the front context to be scaled the same.
    const resize = () => {
      const r = host.getBoundingClientRect();
      const dpr = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.floor(r.width)), height = Math.max(1, Math.floor(r.height));
      el.style.width = `${width}px`;
      el.style.height = `${height}px`;
      canvas.resize(Math.round(width * dpr), Math.round(height * dpr));
      canvas.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      redraw();
    };
    const ro = new ResizeObserver(resize);
    ro.observe(host);
    // A change of devicePixelRatio (browser zoom, another screen) fires resize on the window, not on the host.
    window.addEventListener('resize', resize);
    resize();

    // ---- undo, remembering the graph ----
    const undo = new UndoHistory<Workflow>(serialise(graph), (a, b) => comparable(a) === comparable(b));
    let settle: ReturnType<typeof setTimeout> | undefined;
    let restoring = false;
    // Widgets that mean nothing for a node's model family are greyed out; links, widget values and what the server
    // reports after a run decide the family, so this follows every graph edit and every run state change.
    const syncFamilies = () => {
      const { objectInfo: info, run } = editorStore.get();
      if (info && syncFamilyWidgets(graph, info, run.nodes)) redraw(false);
    };
    const checkpoint = () => {
      clearTimeout(settle);
      settle = setTimeout(() => {
        if (restoring) return;
        syncFamilies();
        const wf = serialise(graph);
        if (undo.record(wf)) propsRef.current.onChange(wf);
      }, 0);
    };
    const restore = (wf: Workflow) => {
      clearTimeout(settle);
      restoring = true;
      graph.configure(structuredClone(wf) as unknown as ISerialisedGraph);
      restoring = false;
      const now = serialise(graph);
      undo.replaceCurrent(now);
      syncFamilies();
      redraw();
      propsRef.current.onChange(now);
    };
    checkpointRef.current = checkpoint;
    // litegraph finishes drags (links, moves, resizes) on a document-level pointerup; listen where it ends.
    const onPointerUp = () => checkpoint();
    window.addEventListener('pointerup', onPointerUp, true);
    el.addEventListener('keyup', checkpoint);
    // litegraph's text and number prompts are DOM dialogs beside the canvas; their edits land via widget callbacks.
    graph.onNodeAdded = () => checkpoint();
    graph.onNodeRemoved = () => checkpoint();

    // ---- invalid links: refuse with a hint naming both types ----
    const lc = canvas.linkConnector;
    const dropLinks = lc.dropLinks.bind(lc);
    lc.dropLinks = (locator, event) => {
      const before = graph.last_link_id;
      const from = lc.renderLinks[0];
      const fromType = from ? String(from.fromSlot.type ?? '*') : null;
      const connectingTo = lc.state.connectingTo;
      dropLinks(locator, event);
      if (!from || graph.last_link_id !== before || !fromType) return;
      const node = graph.getNodeOnPos(event.canvasX, event.canvasY);
      if (!node || node === from.node) return;
      if (connectingTo === 'input') {
        const input = node.getInputOnPos([event.canvasX, event.canvasY]);
        if (input && !LiteGraph.isValidConnection(fromType, input.type)) {
          showHint(`Cannot connect ${fromType} to "${input.name}" of ${node.title}: it takes ${String(input.type)}`, 'error');
        } else if (!input && !(node.inputs ?? []).some((i) => LiteGraph.isValidConnection(fromType, i.type))) {
          showHint(`${node.title} has no input that takes ${fromType}`, 'error');
        }
      } else if (connectingTo === 'output') {
        const output = node.getOutputOnPos([event.canvasX, event.canvasY]);
        if (output && !LiteGraph.isValidConnection(output.type, fromType)) {
          showHint(`Cannot connect ${String(output.type)} output "${output.name}" of ${node.title} to an input that takes ${fromType}`, 'error');
        }
      }
      redraw();
    };

    // ---- search box: double-click on empty canvas, or start typing ----
    const onCanvasEvent = (e: Event) => {
      const detail = (e as CustomEvent).detail as { subType?: string; originalEvent?: MouseEvent };
      if (detail?.subType === 'empty-double-click' && detail.originalEvent) {
        propsRef.current.onOpenSearch({ x: detail.originalEvent.clientX, y: detail.originalEvent.clientY }, '');
      }
    };
    el.addEventListener('litegraph:canvas', onCanvasEvent);
    let lastPointer: ScreenPoint = { x: 0, y: 0 };
    const onKeyDown = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (target && (target.closest('input, textarea, select, [contenteditable], .graphdialog, .litegraph.litecontextmenu') || target.isContentEditable)) return;
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key.toLowerCase() === 'z') {
        e.preventDefault();
        const wf = e.shiftKey ? undo.redo() : undo.undo();
        if (wf) restore(wf);
        return;
      }
      if (mod && e.key.toLowerCase() === 'y') {
        e.preventDefault();
        const wf = undo.redo();
        if (wf) restore(wf);
        return;
      }
      if (mod && e.key.toLowerCase() === 'g') {
        e.preventDefault();
        controller.groupSelection();
        return;
      }
      // Copy/paste/delete are litegraph's (they need the canvas focused); make sure it is when the pointer is over it.
      if (mod && (e.key === 'c' || e.key === 'v') && document.activeElement !== el) {
        el.focus();
        canvas.processKey(e);
        checkpoint();
        return;
      }
      if (!mod && !e.altKey && e.key.length === 1 && /\S/.test(e.key) && document.activeElement !== null && (document.activeElement === el || document.activeElement === document.body)) {
        e.preventDefault();
        const r = el.getBoundingClientRect();
        const inside = lastPointer.x >= r.left && lastPointer.x <= r.right && lastPointer.y >= r.top && lastPointer.y <= r.bottom;
        propsRef.current.onOpenSearch(inside ? lastPointer : { x: r.left + r.width / 2, y: r.top + r.height / 3 }, e.key);
      }
    };
    window.addEventListener('keydown', onKeyDown);

    // ---- tooltips: widget tooltips, socket types, node descriptions ----
    let hoverTimer: ReturnType<typeof setTimeout> | undefined;
    const onPointerMove = (e: PointerEvent) => {
      lastPointer = { x: e.clientX, y: e.clientY };
      clearTimeout(hoverTimer);
      setTooltip(null);
      if (e.buttons) return;
      hoverTimer = setTimeout(() => {
        const [gx, gy] = canvas.convertEventToCanvasOffset(e);
        const node = graph.getNodeOnPos(gx, gy);
        if (!node) return;
        const info = editorStore.get().objectInfo?.[node.type ?? ''];
        const widget = node.getWidgetOnPos(gx, gy, true);
        const input = node.getInputOnPos([gx, gy]);
        let text: string | undefined;
        if (widget) text = widget.tooltip ? `${widget.name}: ${widget.tooltip}` : undefined;
        else if (input) {
          const spec = info?.inputs.find((i) => i.name === input.name.replace(/\.\d+$/, ''));
          text = `${input.name} (${String(input.type)}${spec?.optional ? ', optional' : ''})${spec?.tooltip ? ` — ${spec.tooltip}` : ''}`;
        } else if (gy < node.pos[1] && info?.description) text = info.description;
        if (text) setTooltip({ x: e.clientX + 12, y: e.clientY + 16, text });
      }, 450);
    };
    el.addEventListener('pointermove', onPointerMove);
    el.addEventListener('pointerdown', () => el.focus());

    // ---- loss chart overlays follow their nodes ----
    const placeOverlays = () => {
      const { scale, offset } = canvas.ds;
      for (const [id, div] of overlayRefs.current) {
        const node = graph.getNodeById(Number(id)) ?? graph.getNodeById(id);
        const chart = node && !node.flags.collapsed ? previewLayout(node, editorStore.get().run.nodes[id]).chart : null;
        if (!node || !chart) {
          div.style.display = 'none';
          continue;
        }
        const x = (node.pos[0] + chart.x + offset[0]) * scale;
        const y = (node.pos[1] + chart.y + offset[1]) * scale;
        div.style.display = 'block';
        div.style.width = `${chart.w}px`;
        div.style.height = `${chart.h}px`;
        div.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
      }
    };
    canvas.onDrawForeground = placeOverlays;

    const nodeById = (id: string) => graph.getNodeById(Number(id)) ?? graph.getNodeById(id) ?? null;

    // ---- results on nodes: a node grows to show them, and the nodes it would cover move out of its way ----
    const T = () => LiteGraph.NODE_TITLE_HEIGHT;
    const boxOf = (n: LGraphNode): Box => ({ id: String(n.id), x: n.pos[0], y: n.pos[1] - T(), w: n.size[0], h: n.size[1] + T() });
    /** Grows every node that needs room for what it shows; true when any did. */
    const relayout = (): boolean => {
      const { run } = editorStore.get();
      let resized = false;
      for (const node of graph._nodes) {
        if (node.flags.collapsed) continue;
        const need = previewLayout(node, run.nodes[String(node.id)]);
        if (node.size[0] >= need.width && node.size[1] >= need.height) continue;
        const moves = growAndPush(graph._nodes.filter((n) => !n.flags.collapsed).map(boxOf), String(node.id), need.width, need.height + T());
        node.setSize([Math.max(node.size[0], need.width), Math.max(node.size[1], need.height)]);
        for (const [id, at] of moves) {
          const other = nodeById(id);
          if (other) other.pos = [at.x, at.y + T()];
        }
        resized = true;
      }
      return resized;
    };
    // An image that arrives may make its node grow; otherwise it changes that node only.
    const offLoaded = onImageLoaded((url) => {
      if (relayout()) return redraw(true);
      const { run } = editorStore.get();
      for (const node of graph._nodes) {
        const id = String(node.id);
        if (previewLayout(node, run.nodes[id]).images.some((i) => i.url === url)) redrawNode(node, { run: run.nodes[id], validation: run.validation[id] });
      }
    });

    // Video samples play: at each animation frame, the nodes in view showing a clip whose next frame is due are
    // redrawn (those only, through areaRedraw), so a playing clip costs its own rectangle at its own frame rate.
    let playing = 0;
    const play = () => {
      playing = requestAnimationFrame(play);
      const { run } = editorStore.get();
      const now = performance.now();
      const [ax, ay, aw, ah] = canvas.visible_area;
      for (const [id, nr] of Object.entries(run.nodes)) {
        if (!nr.images.some(mayBeAnimated) && !nr.previews.some(mayBeAnimated)) continue;
        const node = nodeById(id);
        if (!node || node.flags.collapsed) continue;
        const [x, y, w, h] = node.renderArea;
        if (x > ax + aw || x + w < ax || y > ay + ah || y + h < ay) continue;
        if (previewLayout(node, nr).images.some((i) => frameChanged(i.url, now))) redrawNode(node, { run: nr, validation: run.validation[id] });
      }
    };
    playing = requestAnimationFrame(play);
    const offClip = onClipDecoded(() => redraw(false));

    // ---- live state from the store: redraw, and make room on nodes that show results ----
    let drawnRun = editorStore.get().run;
    const unsubscribe = editorStore.subscribe(() => {
      const { run } = editorStore.get();
      // Hints, panels and the queue live outside the canvas.
      if (run === drawnRun) return;
      const before = drawnRun;
      drawnRun = run;
      if (Object.keys(run.nodes).some((id) => before.nodes[id]?.family !== run.nodes[id]?.family)) syncFamilies();
      // A node that grew (or moved out of one's way) may cover links: redraw all. Otherwise only the nodes whose state
      // changed (the run state keeps unchanged nodes' objects as they were).
      if (relayout()) return redraw(true);
      const ids = new Set([...Object.keys(before.nodes), ...Object.keys(run.nodes), ...Object.keys(before.validation), ...Object.keys(run.validation)]);
      const changed = [...ids].filter((id) => before.nodes[id] !== run.nodes[id] || before.validation[id] !== run.validation[id]);
      if (changed.length > 20) return redraw(false);
      for (const id of changed) {
        const node = nodeById(id);
        if (node) redrawNode(node, { run: before.nodes[id], validation: before.validation[id] }, { run: run.nodes[id], validation: run.validation[id] });
      }
    });

    const toScreen = (gx: number, gy: number): ScreenPoint => {
      const r = el.getBoundingClientRect();
      const { scale, offset } = canvas.ds;
      return { x: r.left + (gx + offset[0]) * scale, y: r.top + (gy + offset[1]) * scale };
    };

    const controller: CanvasController = {
      load(wf) {
        restoring = true;
        if (wf) graph.configure(structuredClone(wf) as unknown as ISerialisedGraph);
        else graph.clear();
        // A saved size too short for the node's widgets (a node type that gained a widget since) is grown
        // now, by litegraph's own layout pass: left to the first frame, it grows the node after painting
        // its body at the old size and marks only the background for redrawing.
        for (const node of graph._nodes) if (!node.flags.collapsed) node.arrange();
        restoring = false;
        undo.reset(serialise(graph));
        syncFamilies();
        // A saved file carries its view; restoring it keeps "open what I saved" exact. Otherwise frame the graph.
        const ds = (wf as { extra?: { ds?: { offset?: unknown; scale?: unknown } } } | null)?.extra?.ds;
        if (ds && Array.isArray(ds.offset) && ds.offset.length === 2 && typeof ds.scale === 'number' && ds.scale > 0) {
          canvas.ds.offset[0] = Number(ds.offset[0]);
          canvas.ds.offset[1] = Number(ds.offset[1]);
          canvas.ds.scale = ds.scale;
        } else fit();
        redraw();
      },
      workflow: () => serialise(graph),
      edit(edits, reveal = []) {
        const ids: Record<string, string> = {};
        const find = (ref: string) => nodeById(ids[ref] ?? ref);
        for (const e of edits) {
          if (e.op === 'add') {
            const node = LiteGraph.createNode(e.type);
            if (!node) throw new Error(`unknown node type ${e.type}`);
            if (e.title) node.title = e.title;
            node.pos = [e.at[0], e.at[1]];
            node.setSize([Math.max(node.size[0], e.width ?? 0), Math.max(node.size[1], e.height ?? 0)]);
            graph.add(node);
            for (const [name, value] of Object.entries(e.widgets ?? {})) {
              const w = node.widgets?.find((x) => x.name === name);
              if (w) w.value = value as never;
            }
            ids[e.ref] = String(node.id);
          } else if (e.op === 'set') {
            const w = find(e.node)?.widgets?.find((x) => x.name === e.widget);
            if (!w) throw new Error(`node ${e.node} has no widget ${e.widget}`);
            w.value = e.value as never;
          } else {
            const from = find(e.from), to = find(e.to);
            const out = from?.findOutputSlot(e.output) ?? -1, input = to?.findInputSlot(e.input) ?? -1;
            if (!from || !to || out < 0 || input < 0) throw new Error(`cannot link ${e.from}.${e.output} to ${e.to}.${e.input}`);
            from.connect(out, to, input);
          }
        }
        const shown = reveal.map((r) => find(r)).filter((n): n is LGraphNode => !!n);
        if (shown.length) {
          canvas.deselectAll();
          for (const n of shown) canvas.select(n);
          // Bring them into view at the current zoom when they fit, else zoom out just enough.
          const x0 = Math.min(...shown.map((n) => n.pos[0])) - 40, y0 = Math.min(...shown.map((n) => n.pos[1])) - LiteGraph.NODE_TITLE_HEIGHT - 40;
          const x1 = Math.max(...shown.map((n) => n.pos[0] + n.size[0])) + 40, y1 = Math.max(...shown.map((n) => n.pos[1] + n.size[1])) + 40;
          const [vx, vy, vw, vh] = canvas.visible_area;
          if (x0 < vx || y0 < vy || x1 > vx + vw || y1 > vy + vh) {
            if (x1 - x0 <= vw && y1 - y0 <= vh) {
              canvas.ds.offset[0] -= Math.max(0, x1 - (vx + vw)) - Math.max(0, vx - x0);
              canvas.ds.offset[1] -= Math.max(0, y1 - (vy + vh)) - Math.max(0, vy - y0);
            } else canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0]);
          }
        }
        checkpoint();
        redraw();
        return ids;
      },
      sizeOf(type) {
        const node = LiteGraph.createNode(type);
        return node ? [node.size[0], node.size[1]] : null;
      },
      addNode(type, at) {
        const node = LiteGraph.createNode(type);
        if (!node) {
          showHint(`unknown node type ${type}`, 'error');
          return null;
        }
        const r = el.getBoundingClientRect();
        const p = at ?? { x: r.left + r.width / 2, y: r.top + r.height / 2 };
        const [gx, gy] = canvas.convertCanvasToOffset([p.x - r.left, p.y - r.top]);
        node.pos = [gx, gy];
        graph.add(node);
        canvas.selectNode(node);
        checkpoint();
        return String(node.id);
      },
      undo() {
        const wf = undo.undo();
        if (wf) restore(wf);
      },
      redo() {
        const wf = undo.redo();
        if (wf) restore(wf);
      },
      groupSelection(title = 'Group') {
        const nodes = [...canvas.selectedItems].filter((i): i is LGraphNode => i instanceof LGraphNode);
        if (!nodes.length) {
          showHint('select nodes to group first');
          return false;
        }
        const group = new LGraphGroup(title);
        group.resizeTo(nodes, 10);
        graph.add(group);
        checkpoint();
        redraw();
        return true;
      },
      fitView: fit,
      // panBlit counts every frame it did not move as full; areaRedraw knows which of those were partial.
      frames: () => ({ full: pan.frames.full - area.frames.partial, moved: pan.frames.moved, partial: area.frames.partial }),
      panByMovingPixels(on) {
        pan.enabled = on;
        redraw();
      },
      geometry: {
        nodeIds: () => graph._nodes.map((n) => String(n.id)),
        title(id) {
          const n = nodeById(id);
          return n ? toScreen(n.pos[0] + n.size[0] / 2, n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT / 2) : null;
        },
        slot(id, side, index) {
          const n = nodeById(id);
          if (!n) return null;
          const [gx, gy] = side === 'input' ? n.getInputPos(index) : n.getOutputPos(index);
          return toScreen(gx, gy);
        },
        widget(id, name) {
          const n = nodeById(id);
          const w = n?.widgets?.find((x) => x.name === name);
          if (!n || !w) return null;
          const y = n.pos[1] + (w.last_y ?? w.y) + LiteGraph.NODE_WIDGET_HEIGHT / 2;
          const mid = toScreen(n.pos[0] + n.size[0] / 2, y);
          return { ...mid, left: toScreen(n.pos[0] + 15, y).x, right: toScreen(n.pos[0] + n.size[0] - 15, y).x, disabled: Boolean(w.disabled) };
        },
        image(id, index) {
          const n = nodeById(id);
          const placed = n ? previewLayout(n, editorStore.get().run.nodes[id]).images[index] : undefined;
          if (!n || !placed) return null;
          return toScreen(n.pos[0] + placed.x + placed.w / 2, n.pos[1] + placed.y + placed.h / 2);
        },
        images(id) {
          const n = nodeById(id);
          if (!n) return [];
          return previewLayout(n, editorStore.get().run.nodes[id]).images.map((placed) => {
            const a = toScreen(n.pos[0] + placed.x, n.pos[1] + placed.y);
            const b = toScreen(n.pos[0] + placed.x + placed.w, n.pos[1] + placed.y + placed.h);
            const tiles = (placed.sheet?.tiles ?? []).map((t) => {
              const r = tileRect(placed, t);
              const p = toScreen(n.pos[0] + r.x, n.pos[1] + r.y);
              return { x: p.x, y: p.y, width: r.w * canvas.ds.scale, height: r.h * canvas.ds.scale };
            });
            return { url: placed.url, x: a.x, y: a.y, width: b.x - a.x, height: b.y - a.y, nodeWidth: placed.w, nodeHeight: placed.h, tiles, ...imageState(placed.url), ...clipState(placed.url) };
          });
        },
        samplesLink(id) {
          const n = nodeById(id);
          const link = n ? previewLayout(n, editorStore.get().run.nodes[id]).link : null;
          if (!n || !link) return null;
          return toScreen(n.pos[0] + link.x + 40, n.pos[1] + link.y + link.h / 2);
        },
        box(id) {
          const n = nodeById(id);
          if (!n) return null;
          const b = boxOf(n);
          const a = toScreen(b.x, b.y);
          return { x: a.x, y: a.y, width: b.w * canvas.ds.scale, height: (n.flags.collapsed ? T() : b.h) * canvas.ds.scale };
        },
        viewport() {
          const r = el.getBoundingClientRect();
          return { x: r.left, y: r.top, width: r.width, height: r.height, scale: canvas.ds.scale };
        },
        emptySpot(near) {
          const r = el.getBoundingClientRect();
          let best: ScreenPoint | null = null;
          const distance = (p: ScreenPoint) => (near ? Math.hypot(p.x - near.x, p.y - near.y) : 0);
          for (let y = r.top + 40; y < r.bottom - 40; y += 37) {
            for (let x = r.left + 40; x < r.right - 40; x += 41) {
              const [gx, gy] = canvas.convertCanvasToOffset([x - r.left, y - r.top]);
              const clear = !graph._nodes.some((n) => gx > n.pos[0] - 30 && gx < n.pos[0] + n.size[0] + 30 && gy > n.pos[1] - 60 && gy < n.pos[1] + n.size[1] + 30);
              if (!clear) continue;
              if (!near) return { x, y };
              if (!best || distance({ x, y }) < distance(best)) best = { x, y };
            }
          }
          return best ?? { x: r.left + 10, y: r.bottom - 10 };
        },
        pan(dx, dy) {
          canvas.ds.offset[0] += dx / canvas.ds.scale;
          canvas.ds.offset[1] += dy / canvas.ds.scale;
          redraw();
        },
        zoom(scale) {
          const r = el.getBoundingClientRect();
          canvas.ds.changeScale(scale, [r.width / 2, r.height / 2]);
          redraw();
        },
      },
    };
    controllerRef.current = controller;

    return () => {
      unsubscribe();
      offLoaded();
      offClip();
      cancelAnimationFrame(playing);
      ro.disconnect();
      window.removeEventListener('resize', resize);
      pan.uninstall();
      area.uninstall();
      clearTimeout(settle);
      window.removeEventListener('keydown', onKeyDown);
      window.removeEventListener('pointerup', onPointerUp, true);
      canvas.stopRendering();
      lgRef.current = null;
    };
  }, []);

  // Node types come from the server; nodes loaded before they arrive would be litegraph's "missing" placeholders.
  useEffect(() => {
    const lg = lgRef.current;
    if (!objectInfo || !lg) return;
    registerNodeTypes(objectInfo, {
      pathChoices: (kind) => editorStore.get().pathChoices[kind] ?? [],
      changed: () => checkpointRef.current(),
      decorate(node: LGraphNode, info: NodeInfo) {
        node.onDrawForeground = function (ctx) {
          const s = editorStore.get();
          const id = String(this.id);
          drawLive(ctx, this, { run: s.run.nodes[id], validation: s.run.validation[id] });
        };
        node.onMouseDown = function (_e, pos) {
          const id = String(this.id);
          const hit = imageAt(this, editorStore.get().run.nodes[id], pos[0], pos[1]);
          if (!hit) return false;
          if ('link' in hit) openSamplesView(id);
          else openLightbox({ url: hit.image.url, sheet: hit.image.sheet, tile: hit.tile, node: id });
          return true;
        };
        void info;
      },
    });
    // The rest of the editor may load graphs once the types they use exist.
    if (controllerRef.current) propsRef.current.onReady(controllerRef.current);
  }, [objectInfo]);

  return (
    <div ref={hostRef} className="graph-host" data-testid="graph-host">
      <canvas ref={canvasRef} tabIndex={0} className="graph-canvas" data-testid="graph-canvas" />
      {lossNodes
        .split(',')
        .filter(Boolean)
        .map((id) => (
          <div
            key={id}
            className="node-overlay"
            data-testid={`loss-chart-${id}`}
            ref={(el) => {
              if (el) overlayRefs.current.set(id, el);
              else overlayRefs.current.delete(id);
              lgRef.current?.canvas.setDirty(true);
            }}
          >
            <LossChart nodeId={id} />
          </div>
        ))}
      {tooltip && createPortal(<div className="tooltip" style={{ left: tooltip.x, top: tooltip.y }}>{tooltip.text}</div>, document.body)}
    </div>
  );
}

