import { describe, expect, it } from 'vitest';
import { idFloor, isId, newId } from '../src/core/ids.js';

describe('ids', () => {
  it('sort by creation time, and idFloor splits them at a millisecond', () => {
    const times = [0, 1, 31, 32, 1_000, Date.UTC(2026, 10, 27), Date.UTC(2026, 10, 27) + 1, 2 ** 40 - 1];
    for (const t of times) {
      const floor = idFloor('dlv', t);
      for (let i = 0; i < 20; i++) {
        const at = newId('dlv', t);
        expect(isId('dlv', at)).toBe(true);
        expect(at >= floor).toBe(true);
        expect(newId('dlv', t + 1) > floor).toBe(true);
        if (t > 0) expect(newId('dlv', t - 1) < floor).toBe(true);
      }
    }
    // Many ids over a range: sorting them sorts their times.
    const made = Array.from({ length: 500 }, (_, i) => ({ t: 1_700_000_000_000 + ((i * 7919) % 500), id: '' }));
    for (const m of made) m.id = newId('evt', m.t);
    const byId = [...made].sort((a, b) => (a.id < b.id ? -1 : 1)).map((m) => m.t);
    expect(byId).toEqual([...byId].sort((a, b) => a - b));
  });
});
