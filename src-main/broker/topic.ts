/**
 * Topic exchange matching as RabbitMQ does it: keys and patterns are
 * dot-separated words; `*` matches exactly one word, `#` zero or more. An
 * empty key has zero words (so only "" and "#" match it), and "a." has two
 * words, "a" and "" (RabbitMQ's split_topic_key).
 */
export function splitWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

export type TopicMatcher = (routingKey: string) => boolean;

export function compileTopic(pattern: string): TopicMatcher {
  const p = splitWords(pattern);
  if (p.length === 1 && p[0] === '#') return () => true;
  if (!p.includes('#') && !p.includes('*')) return (key) => key === pattern;
  return (key) => matchWords(p, splitWords(key));
}

export function topicMatches(pattern: string, routingKey: string): boolean {
  return matchWords(splitWords(pattern), splitWords(routingKey));
}

/** Dynamic programming over (pattern word, key word): O(|p|·|k|), no backtracking blow-up on many `#`. */
function matchWords(p: string[], k: string[]): boolean {
  // reach[j]: the pattern prefix consumed so far can end right before key word j.
  let reach = new Uint8Array(k.length + 1);
  reach[0] = 1;
  for (const w of p) {
    const next = new Uint8Array(k.length + 1);
    if (w === '#') {
      let any = 0;
      for (let j = 0; j <= k.length; j++) {
        if (reach[j]) any = 1;
        next[j] = any;
      }
    } else {
      for (let j = 0; j < k.length; j++) if (reach[j] && (w === '*' || w === k[j])) next[j + 1] = 1;
    }
    reach = next;
  }
  return reach[k.length] === 1;
}
