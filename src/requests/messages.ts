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

/** UTF-8 bytes of a string, counted without encoding it. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * The text a message sends to the model, in bytes: string content; of content parts,
 * the `text` parts and the text of `tool_result` parts (string content or text parts),
 * which is where coding agents' file reads go.
 */
function contentBytes(content: unknown, inToolResult = false): number {
  if (typeof content === "string") return utf8Bytes(content);
  if (!Array.isArray(content)) return 0;
  let bytes = 0;
  for (const part of content) {
    if (!isObject(part)) continue;
    if (part.type === "text" && typeof part.text === "string") bytes += utf8Bytes(part.text);
    // A tool result holds text and images, never another tool result: one level, whatever a body nests.
    else if (part.type === "tool_result" && !inToolResult) bytes += contentBytes(part.content, true);
  }
  return bytes;
}

/**
 * The size of a request's prompt, for prompt-cache affinity: each message's text
 * in UTF-8 bytes, and Anthropic's top-level `system` as one more message.
 */
export function requestSize(body: { messages: Record<string, unknown>[]; system?: unknown }): { largestMessageBytes: number; totalBytes: number } {
  let largestMessageBytes = contentBytes(body.system);
  let totalBytes = largestMessageBytes;
  for (const message of body.messages) {
    const bytes = contentBytes(message.content);
    totalBytes += bytes;
    if (bytes > largestMessageBytes) largestMessageBytes = bytes;
  }
  return { largestMessageBytes, totalBytes };
}
