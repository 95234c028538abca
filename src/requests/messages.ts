/**
 * Reads the few fields the session layer needs from an LLM request body in
 * OpenAI chat-completions or Anthropic messages shape. Everything else is
 * ignored, never rejected: the upstream is the judge of its own schema.
 */
import { invalidRequest } from "../session/errors";
import { MAX_TOOL_NAMES } from "../session/validate";

/**
 * Long agent sessions run to a few thousand messages before clients compact
 * their context; ten thousand leaves headroom while bounding every scan of the
 * history, also over RPC, where no body limit applies.
 */
export const MAX_MESSAGES = 10_000;

/** The parts of an LLM request body the session layer reads, as the resolve schema checked them. */
export interface ChatBody {
  model: string;
  messages: Record<string, unknown>[];
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A message's text: string content as is; for content parts, the `text` parts joined with "\n". */
export function messageText(message: Record<string, unknown>): string {
  const { content } = message;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const texts: string[] = [];
  for (const part of content) {
    if (isObject(part) && part.type === "text" && typeof part.text === "string") texts.push(part.text);
  }
  return texts.join("\n");
}

/** The first user message's text (Anthropic's top-level `system` is not a message), or undefined. */
export function firstUserText(messages: ChatBody["messages"]): string | undefined {
  const m = messages.find((m) => m.role === "user");
  return m && messageText(m);
}

export function lastUserText(messages: ChatBody["messages"]): string | undefined {
  const m = messages.findLast((m) => m.role === "user");
  return m && messageText(m);
}

/**
 * Tools the last assistant message called: OpenAI `tool_calls[].function.name`,
 * Anthropic `tool_use` blocks. More than MAX_TOOL_NAMES (the limit `/v1/hash`
 * applies to `toolNames`) is rejected: the loop hash sorts them.
 */
export function lastAssistantToolNames(messages: ChatBody["messages"]): string[] {
  const index = messages.findLastIndex((m) => m.role === "assistant");
  if (index < 0) return [];
  const m = messages[index]!;
  const names: string[] = [];
  const add = (name: string) => {
    if (names.length === MAX_TOOL_NAMES) throw invalidRequest(`body.messages[${index}]`, `must call at most ${MAX_TOOL_NAMES} tools`);
    names.push(name);
  };
  if (Array.isArray(m.tool_calls)) {
    for (const call of m.tool_calls) {
      if (isObject(call) && isObject(call.function) && typeof call.function.name === "string") add(call.function.name);
    }
  }
  if (Array.isArray(m.content)) {
    for (const block of m.content) {
      if (isObject(block) && block.type === "tool_use" && typeof block.name === "string") add(block.name);
    }
  }
  return names;
}
