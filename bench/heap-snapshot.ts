/**
 * A V8 heap snapshot (`.heapsnapshot`, as node's --heapsnapshot-signal writes it) summarised: the
 * live heap by constructor, each object's retained size (its dominator subtree), and what grew
 * between two snapshots of the same process. Node ids are stable across snapshots of one isolate,
 * so an object of both can be matched by id.
 *
 * Terms: a node is a heap object; an edge a reference; `self` the node's own bytes; `retained` what
 * would be freed with it (the bytes of every node it dominates: reachable from the roots only
 * through it). Weak edges keep nothing alive and are left out.
 */

export interface RawHeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapGraph {
  count: number;
  /** Per node: its group (constructor, or `(type)`), its stable id, its own bytes. */
  group: string[];
  id: Float64Array;
  self: Float64Array;
  /** Edges of node i: firstEdge[i] .. firstEdge[i + 1] - 1. */
  firstEdge: Int32Array;
  edgeTo: Int32Array;
  edgeName: string[];
  edgeWeak: Uint8Array;
  /** Node index → retained bytes, and its immediate dominator (the root is its own). */
  retained: Float64Array;
  dominator: Int32Array;
}

/** What a kind of object adds up to in one snapshot. */
export interface GroupTotal {
  group: string;
  count: number;
  selfBytes: number;
}

const LABELLED_TYPES = new Set(['object', 'native']);

/** DevTools' "constructor" column, coarsely: objects by constructor name, the rest by type. */
function groupOf(type: string, name: string): string {
  if (LABELLED_TYPES.has(type)) return name === '' ? '(anonymous object)' : name;
  if (type === 'closure') return '(closure)';
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return '(string)';
  if (type === 'code') return '(compiled code)';
  if ((type === 'array' || type === 'hidden') && (name.startsWith('(') || name.startsWith('system /'))) return name;
  return `(${type})`;
}

export function parseHeapSnapshot(raw: RawHeapSnapshot): HeapGraph {
  const { meta } = raw.snapshot;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const at = (fields: string[], name: string) => {
    const index = fields.indexOf(name);
    if (index < 0) throw new Error(`heap snapshot without the field ${name}`);
    return index;
  };
  const [typeAt, nameAt, idAt, selfAt, edgeCountAt] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((name) =>
    at(meta.node_fields, name),
  ) as [number, number, number, number, number];
  const [edgeTypeAt, edgeNameAt, toAt] = ['type', 'name_or_index', 'to_node'].map((name) => at(meta.edge_fields, name)) as [
    number,
    number,
    number,
  ];
  const count = raw.nodes.length / nodeFields;
  const group: string[] = new Array<string>(count);
  const id = new Float64Array(count);
  const self = new Float64Array(count);
  const firstEdge = new Int32Array(count + 1);
  const edgeTotal = raw.edges.length / edgeFields;
  const edgeTo = new Int32Array(edgeTotal);
  const edgeName: string[] = new Array<string>(edgeTotal);
  const edgeWeak = new Uint8Array(edgeTotal);
  let edge = 0;
  for (let node = 0; node < count; node++) {
    const base = node * nodeFields;
    const type = nodeTypes[raw.nodes[base + typeAt] ?? 0] ?? '';
    group[node] = groupOf(type, raw.strings[raw.nodes[base + nameAt] ?? 0] ?? '');
    id[node] = raw.nodes[base + idAt] ?? 0;
    self[node] = raw.nodes[base + selfAt] ?? 0;
    firstEdge[node] = edge;
    const edges = raw.nodes[base + edgeCountAt] ?? 0;
    for (let k = 0; k < edges; k++, edge++) {
      const edgeBase = edge * edgeFields;
      const edgeType = edgeTypes[raw.edges[edgeBase + edgeTypeAt] ?? 0] ?? '';
      const nameOrIndex = raw.edges[edgeBase + edgeNameAt] ?? 0;
      // Elements and hidden edges are numbered; the others name a property (or a context variable).
      edgeName[edge] = edgeType === 'element' || edgeType === 'hidden' ? `[${nameOrIndex}]` : (raw.strings[nameOrIndex] ?? '');
      edgeWeak[edge] = edgeType === 'weak' ? 1 : 0;
      edgeTo[edge] = (raw.edges[edgeBase + toAt] ?? 0) / nodeFields;
    }
  }
  firstEdge[count] = edge;
  const graph: HeapGraph = {
    count,
    group,
    id,
    self,
    firstEdge,
    edgeTo,
    edgeName,
    edgeWeak,
    retained: new Float64Array(count),
    dominator: new Int32Array(count),
  };
  computeRetained(graph);
  return graph;
}

/**
 * Immediate dominators (Cooper, Harvey and Kennedy's iterative algorithm, over the DFS postorder
 * from node 0, the snapshot's root), then each node's retained size bottom-up. Nodes not reachable
 * from the root retain nothing and are dominated by it.
 */
function computeRetained(graph: HeapGraph): void {
  const { count, firstEdge, edgeTo, edgeWeak } = graph;
  const order = new Int32Array(count).fill(-1); // node → postorder number
  const byOrder: number[] = [];
  const stack: number[] = [0];
  const nextEdge = new Int32Array(count);
  const seen = new Uint8Array(count);
  seen[0] = 1;
  for (let node = 0; node < count; node++) nextEdge[node] = firstEdge[node] ?? 0;
  while (stack.length > 0) {
    const node = stack[stack.length - 1] as number;
    const end = firstEdge[node + 1] ?? 0;
    let pushed = false;
    while ((nextEdge[node] ?? 0) < end) {
      const edge = nextEdge[node] ?? 0;
      nextEdge[node] = edge + 1;
      const to = edgeTo[edge] ?? 0;
      if (edgeWeak[edge] || seen[to]) continue;
      seen[to] = 1;
      stack.push(to);
      pushed = true;
      break;
    }
    if (!pushed) {
      stack.pop();
      order[node] = byOrder.length;
      byOrder.push(node);
    }
  }
  // Predecessors of reachable nodes, through strong edges.
  const predCount = new Int32Array(count + 1);
  for (let node = 0; node < count; node++) {
    if (!seen[node]) continue;
    for (let edge = firstEdge[node] ?? 0; edge < (firstEdge[node + 1] ?? 0); edge++) {
      if (!edgeWeak[edge]) predCount[(edgeTo[edge] ?? 0) + 1]! += 1;
    }
  }
  for (let node = 0; node < count; node++) predCount[node + 1]! += predCount[node] ?? 0;
  const preds = new Int32Array(predCount[count] ?? 0);
  const filled = predCount.slice(0, count);
  for (let node = 0; node < count; node++) {
    if (!seen[node]) continue;
    for (let edge = firstEdge[node] ?? 0; edge < (firstEdge[node + 1] ?? 0); edge++) {
      if (!edgeWeak[edge]) preds[filled[edgeTo[edge] ?? 0]!++] = node;
    }
  }
  const rootOrder = byOrder.length - 1;
  const idom = new Int32Array(byOrder.length).fill(-1); // by postorder number
  idom[rootOrder] = rootOrder;
  const intersect = (a: number, b: number) => {
    while (a !== b) {
      while (a < b) a = idom[a] ?? rootOrder;
      while (b < a) b = idom[b] ?? rootOrder;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let o = rootOrder - 1; o >= 0; o--) {
      const node = byOrder[o] as number;
      let next = -1;
      for (let p = predCount[node] ?? 0; p < (predCount[node + 1] ?? 0); p++) {
        const predOrder = order[preds[p] ?? 0] ?? -1;
        if (predOrder < 0 || idom[predOrder] === -1) continue;
        next = next === -1 ? predOrder : intersect(predOrder, next);
      }
      if (next !== -1 && idom[o] !== next) {
        idom[o] = next;
        changed = true;
      }
    }
  }
  graph.retained.set(graph.self);
  graph.dominator.fill(0);
  // A dominator finishes after everything it dominates: postorder adds each subtree before its parent.
  for (let o = 0; o < rootOrder; o++) {
    const node = byOrder[o] as number;
    const parent = byOrder[idom[o] ?? rootOrder] as number;
    graph.dominator[node] = parent;
    graph.retained[parent]! += graph.retained[node] ?? 0;
  }
}

/** The live heap by group, largest first. */
export function groupTotals(graph: HeapGraph): GroupTotal[] {
  const totals = new Map<string, GroupTotal>();
  for (let node = 0; node < graph.count; node++) {
    const name = graph.group[node] as string;
    const total = totals.get(name) ?? { group: name, count: 0, selfBytes: 0 };
    total.count += 1;
    total.selfBytes += graph.self[node] ?? 0;
    totals.set(name, total);
  }
  return [...totals.values()].sort((a, b) => b.selfBytes - a.selfBytes);
}

export function totalSelfBytes(graph: HeapGraph): number {
  return graph.self.reduce((sum, bytes) => sum + bytes, 0);
}

/** Per group, what `after` holds more than `before`, each figure divided by `per` (the tasks added). */
export function groupGrowth(before: HeapGraph, after: HeapGraph, per: number): GroupTotal[] {
  const earlier = new Map(groupTotals(before).map((total) => [total.group, total]));
  return groupTotals(after)
    .map((total) => ({
      group: total.group,
      count: (total.count - (earlier.get(total.group)?.count ?? 0)) / per,
      selfBytes: (total.selfBytes - (earlier.get(total.group)?.selfBytes ?? 0)) / per,
    }))
    .sort((a, b) => b.selfBytes - a.selfBytes);
}

export interface Holder {
  /** How the holder is reached from the roots: the last edges of its dominator chain. */
  path: string;
  group: string;
  /** Retained bytes grown between the snapshots, divided by `per`. */
  retainedBytes: number;
}

/**
 * What holds the growth: objects (matched by id) whose retained size grew by at least `minBytes`
 * and whose growth is spread over what they dominate (no single dominated object took more than half):
 * the Map, array or object where the per-task entries accumulate, not every link of the chain to it.
 */
export function growthHolders(before: HeapGraph, after: HeapGraph, per: number, minBytes: number): Holder[] {
  const earlier = new Map<number, number>();
  for (let node = 0; node < before.count; node++) earlier.set(before.id[node] ?? 0, before.retained[node] ?? 0);
  const growth = new Float64Array(after.count);
  for (let node = 0; node < after.count; node++) growth[node] = (after.retained[node] ?? 0) - (earlier.get(after.id[node] ?? 0) ?? 0);
  // The largest growth among the nodes each node dominates directly.
  const largestChild = new Float64Array(after.count);
  for (let node = 1; node < after.count; node++) {
    const parent = after.dominator[node] ?? 0;
    largestChild[parent] = Math.max(largestChild[parent] ?? 0, growth[node] ?? 0);
  }
  const names = dominatorEdgeNames(after);
  const holders: Holder[] = [];
  for (let node = 1; node < after.count; node++) {
    const grew = growth[node] ?? 0;
    // Objects new in `after` are the per-task entries themselves, not what holds them.
    if (grew < minBytes || !earlier.has(after.id[node] ?? 0) || (largestChild[node] ?? 0) * 2 > grew) continue;
    holders.push({ path: pathOf(after, names, node), group: after.group[node] as string, retainedBytes: grew / per });
  }
  return holders.sort((a, b) => b.retainedBytes - a.retainedBytes);
}

/** For each node, the name of an edge from its immediate dominator to it (when there is one). */
function dominatorEdgeNames(graph: HeapGraph): string[] {
  const names = new Array<string>(graph.count).fill('');
  for (let node = 0; node < graph.count; node++) {
    for (let edge = graph.firstEdge[node] ?? 0; edge < (graph.firstEdge[node + 1] ?? 0); edge++) {
      const to = graph.edgeTo[edge] ?? 0;
      if (graph.dominator[to] === node && names[to] === '' && !graph.edgeWeak[edge]) names[to] = graph.edgeName[edge] ?? '';
    }
  }
  return names;
}

/** The last `depth` links of the node's dominator chain: `Map .table→ (object elements)`. */
function pathOf(graph: HeapGraph, names: string[], node: number, depth = 4): string {
  const chain: number[] = [];
  for (let at = node; at !== 0 && chain.length <= depth; at = graph.dominator[at] ?? 0) chain.unshift(at);
  const [top, ...rest] = chain;
  return rest.reduce((path, at) => `${path} .${names[at] || '?'}→ ${graph.group[at]}`, graph.group[top ?? 0] ?? '');
}
