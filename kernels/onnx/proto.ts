// A minimal protobuf writer for the parts of onnx.proto the engine emits (models, graphs, nodes,
// tensors, value infos). Hand-written because it is ~150 lines and avoids a codegen dependency.

/** ONNX TensorProto.DataType values for the dtypes the engine uses. */
export const OnnxDataType = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16,
} as const;

class Writer {
  private buf = new Uint8Array(1024);
  len = 0;

  private ensure(n: number) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }

  // Fast path for small non-negative ints, which is nearly every tag and length.
  uint(v: number) {
    if (v < 0 || v > 0x7fffffff) return this.varint(v);
    this.ensure(5);
    while (v >= 0x80) {
      this.buf[this.len++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.len++] = v;
  }

  tag(field: number, wire: number) { this.uint((field << 3) | wire); }

  bytes(field: number, data: Uint8Array) {
    this.tag(field, 2);
    this.uint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string) { this.bytes(field, new TextEncoder().encode(s)); }
  int(field: number, v: number | bigint) { this.tag(field, 0); this.varint(v); }

  float(field: number, v: number) {
    this.tag(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer).setFloat32(this.len, v, true);
    this.len += 4;
  }

  message(field: number, write: (w: Writer) => void) {
    const inner = new Writer();
    write(inner);
    this.bytes(field, inner.finish());
  }

  finish() { return this.buf.subarray(0, this.len); }
}

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: TensorProto };

export interface TensorProto {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian raw bytes; absent when the data is external. */
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export interface NodeProto {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attrs?: Record<string, AttrValue>;
}

export interface ValueInfo { name: string; dataType: number; dims: number[] }

export interface ModelProto {
  graphName: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opset: number;
  extraOpsets?: { domain: string; version: number }[];
  metadata?: Record<string, string>;
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function writeTensor(w: Writer, t: TensorProto) {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.external) {
    const entry = (k: string, v: string) => w.message(13, (e) => { e.string(1, k); e.string(2, v); });
    entry('location', t.external.location);
    entry('offset', String(t.external.offset));
    entry('length', String(t.external.length));
    w.int(14, 1);
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
}

function writeAttr(w: Writer, name: string, a: AttrValue) {
  w.string(1, name);
  switch (a.kind) {
    case 'float': w.float(2, a.value); break;
    case 'int': w.int(3, a.value); break;
    case 'string': w.string(4, a.value); break;
    case 'tensor': w.message(5, (t) => writeTensor(t, a.value)); break;
    case 'floats': for (const v of a.value) w.float(7, v); break;
    case 'ints': for (const v of a.value) w.int(8, v); break;
  }
  w.int(20, ATTR_TYPE[a.kind]);
}

function writeValueInfo(w: Writer, v: ValueInfo) {
  w.string(1, v.name);
  w.message(2, (type) => type.message(1, (tt) => {
    tt.int(1, v.dataType);
    tt.message(2, (shape) => { for (const d of v.dims) shape.message(1, (dim) => dim.int(1, d)); });
  }));
}

/** Serialises a model to ONNX protobuf bytes (IR version 8). */
export function encodeModel(m: ModelProto): Uint8Array {
  const w = new Writer();
  w.int(1, 8);
  w.string(2, 'loragraph');
  w.message(7, (g) => {
    for (const n of m.nodes) {
      g.message(1, (nw) => {
        for (const i of n.inputs) nw.string(1, i);
        for (const o of n.outputs) nw.string(2, o);
        if (n.name) nw.string(3, n.name);
        nw.string(4, n.opType);
        for (const [k, a] of Object.entries(n.attrs ?? {})) nw.message(5, (aw) => writeAttr(aw, k, a));
        if (n.domain) nw.string(7, n.domain);
      });
    }
    g.string(2, m.graphName);
    for (const t of m.initializers) g.message(5, (tw) => writeTensor(tw, t));
    for (const i of m.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
    for (const o of m.outputs) g.message(12, (vw) => writeValueInfo(vw, o));
  });
  w.message(8, (o) => { o.string(1, ''); o.int(2, m.opset); });
  for (const x of m.extraOpsets ?? []) w.message(8, (o) => { o.string(1, x.domain); o.int(2, x.version); });
  for (const [k, v] of Object.entries(m.metadata ?? {})) w.message(14, (e) => { e.string(1, k); e.string(2, v); });
  return w.finish();
}
