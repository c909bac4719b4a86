// Reads back what ORT did to a model: the node list of an ONNX file (op type, inputs, outputs) from
// its protobuf bytes, and the model ORT writes after its graph optimisations. Used to prove that
// optimisations (common-subexpression elimination, constant folding) keep what the engine relies on —
// recomputed blocks stay separate from the forward pass, packed weights stay packed.
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface InspectedNode { opType: string; domain: string; inputs: string[]; outputs: string[] }

/** Varint and length-delimited fields of one protobuf message, in order. */
function* fields(buf: Uint8Array, start = 0, end = buf.length): Generator<{ field: number; wire: number; value: number; from: number; to: number }> {
  let p = start;
  const varint = () => {
    let v = 0, mul = 1, b;
    do { b = buf[p++]; v += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80);
    return v;
  };
  while (p < end) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) yield { field, wire, value: varint(), from: p, to: p };
    else if (wire === 2) { const n = varint(); yield { field, wire, value: n, from: p, to: p + n }; p += n; }
    else if (wire === 5) { p += 4; }
    else if (wire === 1) { p += 8; }
    else throw new Error(`onnx: unsupported protobuf wire type ${wire}`);
  }
}

const text = (buf: Uint8Array, from: number, to: number) => new TextDecoder().decode(buf.subarray(from, to));

/** The nodes of a model's main graph (ModelProto.graph = 7, GraphProto.node = 1). */
export function modelNodes(bytes: Uint8Array): InspectedNode[] {
  const nodes: InspectedNode[] = [];
  for (const g of fields(bytes)) {
    if (g.field !== 7 || g.wire !== 2) continue;
    for (const n of fields(bytes, g.from, g.to)) {
      if (n.field !== 1 || n.wire !== 2) continue;
      const node: InspectedNode = { opType: '', domain: '', inputs: [], outputs: [] };
      for (const f of fields(bytes, n.from, n.to)) {
        if (f.wire !== 2) continue;
        if (f.field === 1) node.inputs.push(text(bytes, f.from, f.to));
        else if (f.field === 2) node.outputs.push(text(bytes, f.from, f.to));
        else if (f.field === 4) node.opType = text(bytes, f.from, f.to);
        else if (f.field === 7) node.domain = text(bytes, f.from, f.to);
      }
      nodes.push(node);
    }
  }
  return nodes;
}

/** How many nodes of each op type a model has. */
export function opTypeCounts(bytes: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of modelNodes(bytes)) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return counts;
}

/**
 * The model as ORT runs it on the CPU EP after its optimisations at level 'all' (the runtime's
 * setting): ORT writes it to a file when asked (session option optimizedModelFilePath).
 */
export async function optimizedModel(model: Uint8Array | string): Promise<Uint8Array> {
  const ort = createRequire(import.meta.url)('onnxruntime-node');
  const dir = mkdtempSync(join(tmpdir(), 'lg-optimized-'));
  try {
    const out = join(dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', executionProviders: ['cpu'], optimizedModelFilePath: out });
    await s.release();
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
