// The event engine: events run in (time, scheduling order), events scheduled while running are
// run too, and scheduling into the past is an internal error.

import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../../src/backend/timing/events.js';

describe('EventQueue', () => {
  it('runs events by time, then by scheduling order', () => {
    const q = new EventQueue();
    const seen: string[] = [];
    for (const [at, name] of [[3, 'c'], [1, 'a1'], [2, 'b'], [1, 'a2'], [0, 'z'], [1, 'a3']] as const) {
      q.schedule(at, () => seen.push(`${name}@${q.now}`));
    }
    expect(q.run()).toBe(3);
    expect(seen).toEqual(['z@0', 'a1@1', 'a2@1', 'a3@1', 'b@2', 'c@3']);
    expect(q.eventsRun).toBe(6);
  });

  it('runs events scheduled by events, including at the current time', () => {
    const q = new EventQueue();
    const seen: number[] = [];
    q.schedule(1, () => {
      q.schedule(1, () => seen.push(2));
      q.schedule(5, () => seen.push(3));
      seen.push(1);
    });
    q.schedule(1, () => seen.push(1.5));
    expect(q.run()).toBe(5);
    expect(seen).toEqual([1, 1.5, 2, 3]);
  });

  it('keeps order on many random events', () => {
    const q = new EventQueue();
    const times: number[] = [];
    let x = 12345;
    for (let i = 0; i < 5000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      q.schedule(x % 97, () => times.push(q.now));
    }
    q.run();
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times).toHaveLength(5000);
  });

  it('refuses events in the past', () => {
    const q = new EventQueue();
    q.schedule(2, () => q.schedule(1, () => undefined));
    expect(() => q.run()).toThrow(/in the past/);
  });
});
