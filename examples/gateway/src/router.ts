/**
 * PLACEHOLDER ROUTER. Picks a tier from the last user message's length and a
 * few keywords. It exists so the example runs end to end; put your real
 * router (a classifier, a cost model) here.
 */
export type Tier = "SIMPLE" | "MEDIUM" | "COMPLEX" | "REASONING";

const REASONING_WORDS = /\b(prove|theorem|step by step|derive|formal)\b/i;
const COMPLEX_WORDS = /\b(refactor|architecture|debug|optimi[sz]e|design)\b/i;

export function routeTier(text: string): Tier {
  if (REASONING_WORDS.test(text) || text.length > 4000) return "REASONING";
  if (COMPLEX_WORDS.test(text) || text.length > 1000) return "COMPLEX";
  if (text.length > 200) return "MEDIUM";
  return "SIMPLE";
}
