/** Realistic LLM request bodies in both shapes, for the resolve tests. */

export const SYSTEM = "You are a careful coding agent. Follow the repository's conventions.";

export function openai(model: string, turns: { user?: string | { type: string; text?: string }[]; tools?: string[] }[], extra: Record<string, unknown> = {}) {
  const messages: Record<string, unknown>[] = [{ role: "system", content: SYSTEM }];
  turns.forEach((t, i) => {
    if (t.user !== undefined) messages.push({ role: "user", content: t.user });
    if (t.tools) {
      messages.push({
        role: "assistant",
        content: null,
        tool_calls: t.tools.map((name, j) => ({ id: `call_${i}_${j}`, type: "function", function: { name, arguments: '{"path":"src/index.ts"}' } })),
      });
      t.tools.forEach((_, j) => messages.push({ role: "tool", tool_call_id: `call_${i}_${j}`, content: "file contents ..." }));
    }
  });
  return { model, messages, temperature: 0.2, stream: false, tools: [{ type: "function", function: { name: "read_file", parameters: {} } }], ...extra };
}

export function anthropic(model: string, turns: { user?: string; tools?: string[] }[]) {
  const messages: Record<string, unknown>[] = [];
  turns.forEach((t, i) => {
    if (t.user !== undefined) messages.push({ role: "user", content: [{ type: "text", text: t.user }] });
    if (t.tools) {
      messages.push({
        role: "assistant",
        content: [
          { type: "text", text: "Let me look." },
          ...t.tools.map((name, j) => ({ type: "tool_use", id: `tu_${i}_${j}`, name, input: { path: "a.ts" } })),
        ],
      });
      messages.push({ role: "user", content: t.tools.map((_, j) => ({ type: "tool_result", tool_use_id: `tu_${i}_${j}`, content: "ok" })) });
    }
  });
  return { model, system: SYSTEM, max_tokens: 1024, messages };
}
