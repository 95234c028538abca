/**
 * Reads the few fields the session layer needs from an LLM request body in
 * OpenAI chat-completions or Anthropic messages shape. Everything else is
 * ignored, never rejected: the upstream is the judge of its own schema.
 */
import { invalidRequest } from "../session/errors";

export interface ChatBody {
  model: string;
  messages: Record<string, unknown>[];
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates the parts of `body` we read: an object with a string `model` and an array of message objects. */
export function parseChatBody(body: unknown): ChatBody {
  if (!isObject(body)) throw invalidRequest("body", "must be an object (the LLM request body)");
  if (typeof body.model !== "string" || body.model === "") throw invalidRequest("body.model", "must be a non-empty string");
  if (!Array.isArray(body.messages)) throw invalidRequest("body.messages", "must be an array");
  body.messages.forEach((m, i) => {
    if (!isObject(m)) throw invalidRequest(`body.messages[${i}]`, "must be an object");
  });
  return { model: body.model, messages: body.messages as Record<string, unknown>[] };
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

function findMessage(messages: ChatBody["messages"], role: string, fromEnd: boolean): Record<string, unknown> | undefined {
  if (fromEnd) {
    for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === role) return messages[i];
    return undefined;
  }
  return messages.find((m) => m.role === role);
}

/** The first user message's text (Anthropic's top-level `system` is not a message), or undefined. */
export function firstUserText(messages: ChatBody["messages"]): string | undefined {
  const m = findMessage(messages, "user", false);
  return m && messageText(m);
}

export function lastUserText(messages: ChatBody["messages"]): string | undefined {
  const m = findMessage(messages, "user", true);
  return m && messageText(m);
}

/** Tools the last assistant message called: OpenAI `tool_calls[].function.name`, Anthropic `tool_use` blocks. */
export function lastAssistantToolNames(messages: ChatBody["messages"]): string[] {
  const m = findMessage(messages, "assistant", true);
  if (!m) return [];
  const names: string[] = [];
  if (Array.isArray(m.tool_calls)) {
    for (const call of m.tool_calls) {
      if (isObject(call) && isObject(call.function) && typeof call.function.name === "string") names.push(call.function.name);
    }
  }
  if (Array.isArray(m.content)) {
    for (const block of m.content) {
      if (isObject(block) && block.type === "tool_use" && typeof block.name === "string") names.push(block.name);
    }
  }
  return names;
}
