// Layer offloading for inference (the Sampler and the Train node's preview samples of a model whose Load
// Model offload is `blocks`): a forward graph built with gradient checkpointing on runs segment by segment
// (kernels/train/segments.ts, the split the offloaded training step uses), each segment's frozen weights
// read from the checkpoint file or host memory when it runs. Forward only: no backward sessions. Between
// segments only the values crossing them wait on the host, each dropped once its last reader has run.
import { BYTES_PER_ELEMENT, type HostTensor, type Tensor } from '../tensor';
import { compileGraph } from '../compile';
import type { Feed, Runtime, Session } from '../runtime';
import type { MemoryEstimate } from './memory';
import { cloneOps, noArena, segmentedEstimate, segmentInputs, splitAtBlocks, WeightStreamer, type Segment } from './segments';

interface Plan {
  seg: Segment;
  inputs: Tensor[];
  outputs: Record<string, Tensor>;
  /** Exports of earlier segments this one is the last to read: dropped from the host after it runs. */
  drops: number[];
  session?: Session;
}

/**
 * A forward graph run as segment sessions. `plan` splits it and estimates its memory without making a
 * session (the pre-flight comes first); `load` makes the sessions (one per distinct segment graph:
 * blocks of the same shape share one); `run` takes the graph's named inputs and returns its outputs.
 */
export class OffloadedForward {
  private readonly weights = new WeightStreamer();

  private constructor(
    private readonly plans: Plan[],
    /** Graph output name → the tensor (exported by its segment). */
    private readonly outputs: [string, Tensor][],
    /** The largest segment graph plus the most values waiting on the host at once. */
    readonly memoryEstimate: MemoryEstimate,
  ) {}

  /** Splits the graph of `outputs` at its blocks; `inputs` are the graph inputs `run` is fed by name. */
  static plan(inputs: Tensor[], outputs: Record<string, Tensor>): OffloadedForward {
    const what = 'layer offloading';
    const roots = Object.values(outputs);
    const { segments, segmentOf, order } = splitAtBlocks(roots, what, roots);
    const named = new Set(inputs.map((t) => t.id));
    for (const t of order) if (t.source.kind === 'input' && !named.has(t.id)) throw new Error(`${what}: graph input '${t.source.name}' is not among the inputs`);
    // The last segment reading each crossing value; outputs stay to the end.
    const lastReader = new Map<number, number>();
    segments.forEach((seg, i) => { for (const x of seg.reads) if (segmentOf(x) !== undefined) lastReader.set(x.id, i); });
    for (const t of roots) lastReader.set(t.id, segments.length);
    const plans: Plan[] = segments.map((seg, i) => {
      const ins = segmentInputs(seg);
      const clone = cloneOps(seg, ins);
      const drops = seg.reads.filter((x) => lastReader.get(x.id) === i).map((x) => x.id);
      return { seg, inputs: ins, outputs: Object.fromEntries(seg.exports.map((t, j) => [`out${j}`, clone(t)])), drops };
    });
    // What waits on the host: at its fullest just after a segment has run, before it drops its reads.
    const bytes = (t: Tensor) => t.size * BYTES_PER_ELEMENT[t.dtype];
    let live = 0, host = 0;
    const size = new Map(segments.flatMap((s) => s.exports.map((t) => [t.id, bytes(t)] as const)));
    for (const p of plans) {
      live += p.seg.exports.reduce((n, t) => n + bytes(t), 0);
      host = Math.max(host, live);
      for (const id of p.drops) live -= size.get(id)!;
    }
    return new OffloadedForward(plans, Object.entries(outputs), segmentedEstimate(plans.map((p) => Object.values(p.outputs)), host));
  }

  /** Loads the segment sessions (without ORT's arena); `name` names the compiled graphs. */
  async load(rt: Runtime, name = 'offload_forward'): Promise<this> {
    for (const p of this.plans) p.session = await rt.load(noArena(compileGraph(p.inputs, p.outputs, { name })));
    return this;
  }

  /** Segments (blocks and the glue between them) and the distinct sessions they run on. */
  get layout() {
    return { segments: this.plans.length, sessions: new Set(this.plans.map((p) => p.session?.key)).size };
  }

  /** Bytes of frozen weights fed to the largest segment run so far. */
  get maxSegmentWeightBytes() { return this.weights.maxSegmentWeightBytes; }

  /** Runs the segments in order; `feeds` holds the graph inputs by name. */
  async run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    try { return await this.runSegments(feeds); } finally {
      // A pipeline lives as long as its weights, with no dispose: files are not held open between calls.
      this.weights.close();
    }
  }

  private async runSegments(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    const acts = new Map<number, HostTensor>();
    for (const p of this.plans) {
      if (!p.session) throw new Error('layer offloading: run before load');
      const f = this.weights.feeds(p.seg, (x): Feed => {
        if (x.source.kind !== 'input') return acts.get(x.id)!;
        const v = feeds[x.source.name];
        if (!v) throw new Error(`layer offloading: input '${x.source.name}' was not fed`);
        return v;
      });
      const out = await p.session.run(f.feeds, { transfer: f.transfer });
      p.seg.exports.forEach((t, j) => acts.set(t.id, out[`out${j}`]));
      for (const id of p.drops) acts.delete(id);
    }
    return Object.fromEntries(this.outputs.map(([n, t]) => [n, acts.get(t.id)!]));
  }

  /** Unloads the segment sessions (they load again on the next run). */
  async release() {
    for (const s of new Set(this.plans.map((p) => p.session))) await s?.release();
  }
}
