/** The benchmark's heap-snapshot summariser, on snapshots small enough to work out by hand. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  groupGrowth,
  groupTotals,
  growthHolders,
  parseHeapSnapshot,
  totalSelfBytes,
  type RawHeapSnapshot,
} from '../../bench/heap-snapshot.js';

const NODE_TYPES = ['hidden', 'array', 'string', 'object', 'code', 'closure', 'regexp', 'number', 'native', 'synthetic'];
const EDGE_TYPES = ['context', 'element', 'property', 'internal', 'hidden', 'shortcut', 'weak'];

interface Node {
  type: string;
  name: string;
  id: number;
  self: number;
  /** [edge type, name (or index), target's position in the list] */
  edges: [string, string | number, number][];
}

/** A snapshot in V8's layout (flat nodes and edges arrays, strings by index), node 0 the root. */
function snapshot(nodes: Node[]): RawHeapSnapshot {
  const strings: string[] = [];
  const stringAt = (text: string) => {
    const at = strings.indexOf(text);
    return at >= 0 ? at : strings.push(text) - 1;
  };
  const flatNodes: number[] = [];
  const flatEdges: number[] = [];
  for (const node of nodes) {
    flatNodes.push(NODE_TYPES.indexOf(node.type), stringAt(node.name), node.id, node.self, node.edges.length, 0, 0);
    for (const [type, name, to] of node.edges) {
      flatEdges.push(EDGE_TYPES.indexOf(type), typeof name === 'number' ? name : stringAt(name), to * 7);
    }
  }
  return {
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id', 'detachedness'],
        node_types: [NODE_TYPES],
        edge_fields: ['type', 'name_or_index', 'to_node'],
        edge_types: [EDGE_TYPES],
      },
    },
    nodes: flatNodes,
    edges: flatEdges,
    strings,
  };
}

/**
 * root → Tracker .units→ Map, which holds `entries` Entry objects (100 bytes each, each with a
 * 20-byte string); root → Config and root → Shared and Config → Shared (Shared has two owners);
 * a weak edge to Cached, which nothing else holds.
 */
function tracker(entries: number): RawHeapSnapshot {
  const fixed: Node[] = [
    { type: 'synthetic', name: '(GC roots)', id: 1, self: 0, edges: [] },
    { type: 'object', name: 'Tracker', id: 3, self: 40, edges: [['property', 'units', 2]] },
    { type: 'object', name: 'Map', id: 5, self: 30, edges: [] },
    { type: 'object', name: 'Config', id: 7, self: 50, edges: [['property', 'shared', 4]] },
    { type: 'object', name: 'Shared', id: 9, self: 60, edges: [] },
    { type: 'object', name: 'Cached', id: 11, self: 1000, edges: [] },
  ];
  (fixed[0] as Node).edges.push(['element', 1, 1], ['element', 2, 3], ['element', 3, 4], ['weak', 4, 5]);
  const nodes = [...fixed];
  for (let i = 0; i < entries; i++) {
    const entry = nodes.length;
    (fixed[2] as Node).edges.push(['element', i, entry]);
    nodes.push({ type: 'object', name: 'Entry', id: 101 + 4 * i, self: 100, edges: [['property', 'unit', entry + 1]] });
    nodes.push({ type: 'string', name: `tessia-task-${i}.service`, id: 103 + 4 * i, self: 20, edges: [] });
  }
  return snapshot(nodes);
}

describe('parseHeapSnapshot', () => {
  it('gives each object the bytes it alone keeps alive: its own and those it dominates, not what another also holds, nor what only a weak edge reaches.', () => {
    const graph = parseHeapSnapshot(tracker(2));
    const retainedOf = (name: string) => graph.retained[graph.group.indexOf(name)];
    assert.equal(graph.count, 10);
    assert.equal(retainedOf('Map'), 30 + 2 * 120);
    assert.equal(retainedOf('Tracker'), 40 + 30 + 2 * 120);
    // Shared is reachable from the root directly and through Config: Config does not retain it.
    assert.equal(retainedOf('Config'), 50);
    assert.equal(retainedOf('Shared'), 60);
    assert.equal(retainedOf('Cached'), 1000, 'an object retains at least itself');
    assert.equal(graph.retained[0], 40 + 30 + 2 * 120 + 50 + 60, 'the root retains everything strongly reachable, Cached not');
    assert.equal(totalSelfBytes(graph), 40 + 30 + 50 + 60 + 1000 + 2 * 120);
  });

  it('groups objects by constructor and the rest by type.', () => {
    const totals = groupTotals(parseHeapSnapshot(tracker(3)));
    assert.deepEqual(
      totals.map((total) => [total.group, total.count, total.selfBytes]),
      [
        ['Cached', 1, 1000],
        ['Entry', 3, 300],
        ['Shared', 1, 60],
        ['(string)', 3, 60],
        ['Config', 1, 50],
        ['Tracker', 1, 40],
        ['Map', 1, 30],
        ['(GC roots)', 1, 0],
      ].map(([group, count, bytes]) => [group === '(GC roots)' ? '(synthetic)' : group, count, bytes]),
    );
  });
});

describe('what grew between two snapshots', () => {
  it('divides the growth of each group by the tasks added.', () => {
    const growth = groupGrowth(parseHeapSnapshot(tracker(1)), parseHeapSnapshot(tracker(5)), 4);
    assert.deepEqual(growth.slice(0, 2), [
      { group: 'Entry', count: 1, selfBytes: 100 },
      { group: '(string)', count: 1, selfBytes: 20 },
    ]);
    assert.ok(growth.slice(2).every((group) => group.count === 0 && group.selfBytes === 0));
  });

  it('names the object the entries accumulate in, not each link of the chain to it nor the entries themselves.', () => {
    const holders = growthHolders(parseHeapSnapshot(tracker(0)), parseHeapSnapshot(tracker(4)), 4, 10);
    assert.deepEqual(holders, [{ path: 'Tracker .units→ Map', group: 'Map', retainedBytes: 120 }]);
  });

  it('names nothing when nothing grew by the threshold.', () => {
    assert.deepEqual(growthHolders(parseHeapSnapshot(tracker(2)), parseHeapSnapshot(tracker(2)), 1, 1), []);
  });
});
