import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { topicMatches, compileTopic } from '../../../src-main/broker/index.js';
import { splitWords } from '../../../src-main/broker/topic.js';

/** Reference: every word of the key becomes ".word"; * = one word, # = zero or more. */
function reference(pattern: string, key: string): boolean {
  const words = splitWords(pattern);
  const esc = (w: string) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = words.map((w) => (w === '#' ? '(?:\\.[^.]*)*' : w === '*' ? '\\.[^.]*' : `\\.${esc(w)}`)).join('');
  const subject = splitWords(key).map((w) => `.${w}`).join('');
  return new RegExp(`^${re}$`).test(subject);
}

describe('topic matching', () => {
  it('follows RabbitMQ examples', () => {
    expect(topicMatches('*.orange.*', 'quick.orange.rabbit')).toBe(true);
    expect(topicMatches('*.*.rabbit', 'quick.orange.rabbit')).toBe(true);
    expect(topicMatches('lazy.#', 'lazy.orange.male.rabbit')).toBe(true);
    expect(topicMatches('lazy.#', 'lazy')).toBe(true);
    expect(topicMatches('*.orange.*', 'quick.orange.male.rabbit')).toBe(false);
    expect(topicMatches('*.*.rabbit', 'lazy.orange.male.rabbit')).toBe(false);
    expect(topicMatches('#', '')).toBe(true);
    expect(topicMatches('*', '')).toBe(false);
    expect(topicMatches('', '')).toBe(true);
    expect(topicMatches('a.#.b', 'a.b')).toBe(true);
    expect(topicMatches('a.#.b', 'a.x.y.b')).toBe(true);
    expect(topicMatches('#.#', 'a')).toBe(true);
    expect(topicMatches('a.*', 'a.')).toBe(true); // "a." has an empty second word
    expect(topicMatches('a', 'a.')).toBe(false);
  });

  it('agrees with a regex reference on random patterns and keys', () => {
    const word = fc.constantFrom('a', 'b', 'c', '', 'ab');
    const pword = fc.oneof(word, fc.constant('*'), fc.constant('#'));
    const key = fc.array(word, { maxLength: 6 }).map((ws) => (ws.length === 0 ? '' : ws.join('.')));
    const pattern = fc.array(pword, { maxLength: 6 }).map((ws) => (ws.length === 0 ? '' : ws.join('.')));
    fc.assert(
      fc.property(pattern, key, (p, k) => {
        const expected = reference(p, k);
        expect(topicMatches(p, k)).toBe(expected);
        expect(compileTopic(p)(k)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('does not backtrack exponentially with many #', () => {
    // Backtracking would try about 10^23 ways to split 60 words over 30 #s (years);
    // a matcher that does not answers in microseconds. The bound only tells the two
    // apart, so a loaded machine never comes near it; speed itself is the benchmark's.
    const p = Array.from({ length: 30 }, () => '#').join('.') + '.z';
    const k = Array.from({ length: 60 }, () => 'a').join('.');
    const t = performance.now();
    expect(topicMatches(p, k)).toBe(false);
    expect(compileTopic(p)(k)).toBe(false);
    expect(performance.now() - t).toBeLessThan(10_000);
  });
});
