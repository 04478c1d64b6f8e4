// The ONNX file a graph becomes: nodes, initializers, inputs and outputs recorded as they are
// defined, then written as `<name>.onnx` plus one external-data file. Initializers produce their
// bytes only when written, one at a time, so the 3 GB fp16 UNet never sits in memory whole and
// the protobuf itself stays small.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import onnxProto from 'onnx-proto';
import { float32ArrayToHalf } from '../half.js';
import type { Shape } from './static-shapes.js';

const { onnx } = onnxProto;

export type ElemType = 'float32' | 'float16' | 'int64' | 'uint8';
export const ONNX_TYPE: Record<ElemType, number> = { float32: 1, float16: 10, int64: 7, uint8: 2 };
/** Bytes per element. */
export const ELEMENT_BYTES: Record<ElemType, number> = { float32: 4, float16: 2, int64: 8, uint8: 1 };

export type Attr = { i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string };
export const attr = {
  int: (i: number): Attr => ({ i }),
  float: (f: number): Attr => ({ f }),
  ints: (ints: number[]): Attr => ({ ints }),
  string: (s: string): Attr => ({ s }),
};

export interface NodeRecord {
  opType: string;
  domain?: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
  /** What was known of each output's shape when the node was defined (read by the graph passes). */
  outputShapes?: readonly (Shape | undefined)[];
}

export interface Initializer {
  name: string;
  dims: readonly number[];
  dtype: ElemType;
  /** Produces the little-endian bytes when the file is written. */
  bytes(): Uint8Array;
  /** The values before they were stored in `dtype` (checkpoint weights): a pass that stores them otherwise loses nothing. */
  values?(): Float32Array;
  /** In the external-data file (weights) rather than inline (small constants). */
  external: boolean;
}

export interface SaveResult {
  modelPath: string;
  dataPath: string;
  modelBytes: number;
  dataBytes: number;
  initializers: number;
  nodes: number;
}

export class OnnxWriter {
  private nodes: NodeRecord[] = [];
  private inits: Initializer[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly inputShapes = new Map<string, Shape>();
  private readonly inputDimNames = new Map<string, readonly (number | string)[]>();
  private counter = 0;

  /** A name no other node, value or initializer of this file has. */
  uniqueName(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  addNode(node: NodeRecord): void {
    this.nodes.push(node);
  }

  /** The nodes in the order they run (each after the producers of its inputs). */
  get nodeList(): readonly NodeRecord[] {
    return this.nodes;
  }

  /** Replaces the node list (a graph pass's result); it must stay in an order that runs. */
  setNodes(nodes: readonly NodeRecord[]): void {
    this.nodes = [...nodes];
  }

  initializer(name: string): Initializer | undefined {
    return this.inits.find((i) => i.name === name);
  }

  get outputNames(): readonly string[] {
    return this.outputs.map((o) => o.name!);
  }

  /**
   * Drops the nodes no graph output depends on, then the initializers no node reads (what a
   * graph pass left behind when it replaced a subgraph by one fused node).
   */
  removeUnused(): void {
    const needed = new Set(this.outputNames);
    const kept: NodeRecord[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      if (!node.outputs.some((o) => needed.has(o))) continue;
      kept.push(node);
      for (const input of node.inputs) if (input) needed.add(input);
    }
    this.nodes = kept.reverse();
    this.inits = this.inits.filter((init) => needed.has(init.name));
  }

  addInitializer(init: Initializer): void {
    this.inits.push(init);
  }

  /** A graph input or output; a string dimension is dynamic (its name shows in the file). */
  addInput(name: string, dtype: ElemType, dims: readonly (number | string)[]): void {
    this.inputs.push(valueInfo(name, dtype, dims));
    this.inputDimNames.set(name, [...dims]);
    this.inputShapes.set(
      name,
      dims.map((d) => (typeof d === 'number' ? d : null)),
    );
  }

  /** A graph input's shape, its named (run-time) sizes unknown. */
  inputShape(name: string): Shape | undefined {
    return this.inputShapes.get(name);
  }
  /** A graph input's dimensions as declared: sizes, and names for the run-time ones. */
  inputDims(name: string): readonly (number | string)[] | undefined {
    return this.inputDimNames.get(name);
  }
  get inputNames(): readonly string[] {
    return [...this.inputDimNames.keys()];
  }
  addOutput(name: string, dtype: ElemType, dims: readonly (number | string)[]): void {
    this.outputs.push(valueInfo(name, dtype, dims));
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** How many nodes of each operator the graph holds, keyed `domain:op` for non-ONNX domains. */
  operatorCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const n of this.nodes) {
      const key = n.domain ? `${n.domain}:${n.opType}` : n.opType!;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /** Writes `<name>.onnx` and `<name>.onnx_data` (the external initializers, 64-byte aligned). */
  save(modelPath: string, onProgress?: (written: number, total: number) => void): SaveResult {
    const dataPath = `${modelPath}_data`;
    const location = basename(dataPath);
    const fd = openSync(dataPath, 'w');
    const initializer: onnxProto.onnx.ITensorProto[] = [];
    let offset = 0;
    const total = this.inits.filter((i) => i.external).reduce((s, i) => s + elementCount(i.dims) * ELEMENT_BYTES[i.dtype], 0);
    try {
      for (const init of this.inits) {
        const bytes = init.bytes();
        const proto: onnxProto.onnx.ITensorProto = { name: init.name, dims: [...init.dims], dataType: ONNX_TYPE[init.dtype] };
        if (init.external) {
          offset = Math.ceil(offset / 64) * 64;
          writeAll(fd, bytes, offset);
          proto.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
          proto.externalData = [
            { key: 'location', value: location },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(bytes.byteLength) },
          ];
          offset += bytes.byteLength;
          onProgress?.(offset, total);
        } else {
          proto.rawData = bytes;
        }
        initializer.push(proto);
      }
    } finally {
      closeSync(fd);
    }
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'svd-studio',
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      graph: { name: basename(modelPath, '.onnx'), node: this.nodes.map(toNodeProto), initializer, input: this.inputs, output: this.outputs },
    });
    const buf = onnx.ModelProto.encode(model).finish();
    writeFileSync(modelPath, buf);
    return { modelPath, dataPath, modelBytes: buf.byteLength, dataBytes: offset, initializers: this.inits.length, nodes: this.nodes.length };
  }
}

/** Float values as the bytes of a tensor of `dtype` (float16 rounds to nearest even). */
export function encodeFloats(data: Float32Array, dtype: 'float32' | 'float16'): Uint8Array {
  if (dtype === 'float16') {
    const h = float32ArrayToHalf(data);
    return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function valueInfo(name: string, dtype: ElemType, dims: readonly (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_TYPE[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function toNodeProto(node: NodeRecord): onnxProto.onnx.INodeProto {
  return {
    opType: node.opType,
    domain: node.domain,
    name: node.name,
    input: [...node.inputs],
    output: [...node.outputs],
    attribute: Object.entries(node.attrs).map(([name, a]) => toAttribute(name, a)),
  };
}

function toAttribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in a) return { name, type: T.INT, i: a.i };
  if ('f' in a) return { name, type: T.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: T.INTS, ints: a.ints };
  if ('floats' in a) return { name, type: T.FLOATS, floats: a.floats };
  return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
}

function writeAll(fd: number, bytes: Uint8Array, position: number) {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}
