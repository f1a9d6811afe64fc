/** The A/B benchmark's order of sides (bench/ab.ts): fair to each side over whole cycles. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { balancedOrderOf, orderOf } from '../../bench/ab.js';

describe('orderOf', () => {
  for (const sides of [
    ['a', 'b', 'bare'],
    ['a', 'b', 'bare', 'aByFetch'],
  ]) {
    it(`puts each of ${sides.length} sides right after each other one equally often, every turn an order of all of them.`, () => {
      const cycle = sides.reduce((product, _side, index) => product * (index + 1), 1);
      const after = new Map<string, number>();
      const first = new Map<string, number>();
      for (let turn = 0; turn < 2 * cycle; turn++) {
        const order = orderOf(sides, turn);
        assert.deepEqual([...order].sort(), [...sides].sort(), `turn ${turn}: ${order.join(' ')}`);
        first.set(order[0] ?? '', (first.get(order[0] ?? '') ?? 0) + 1);
        for (let k = 1; k < order.length; k++)
          after.set(`${order[k - 1]}→${order[k]}`, (after.get(`${order[k - 1]}→${order[k]}`) ?? 0) + 1);
      }
      const pairs = sides.length * (sides.length - 1);
      assert.equal(after.size, pairs);
      assert.deepEqual(new Set(after.values()), new Set([(2 * cycle * (sides.length - 1)) / pairs]));
      assert.deepEqual(new Set(first.values()), new Set([(2 * cycle) / sides.length]));
    });
  }
});

describe('balancedOrderOf', () => {
  for (const count of [2, 4, 6]) {
    const sides = Array.from({ length: count }, (_, index) => `s${index}`);
    it(`over ${count} rows puts each of ${count} sides in each place once and right after each other one once, then repeats.`, () => {
      const after = new Map<string, number>();
      const places = new Map<string, number>();
      for (let turn = 0; turn < count; turn++) {
        const order = balancedOrderOf(sides, turn);
        assert.deepEqual([...order].sort(), [...sides].sort(), `turn ${turn}: ${order.join(' ')}`);
        assert.deepEqual(balancedOrderOf(sides, turn + count), order, `turn ${turn + count} repeats turn ${turn}`);
        order.forEach((side, place) => places.set(`${side}@${place}`, (places.get(`${side}@${place}`) ?? 0) + 1));
        for (let k = 1; k < order.length; k++)
          after.set(`${order[k - 1]}→${order[k]}`, (after.get(`${order[k - 1]}→${order[k]}`) ?? 0) + 1);
      }
      assert.equal(places.size, count * count);
      assert.deepEqual(new Set(places.values()), new Set([1]));
      assert.equal(after.size, count * (count - 1));
      assert.deepEqual(new Set(after.values()), new Set([1]));
    });
  }

  it('refuses an odd number of sides (no such square of that few rows).', () => {
    assert.throws(() => balancedOrderOf(['a', 'b', 'c'], 0), /even number/);
  });
});
