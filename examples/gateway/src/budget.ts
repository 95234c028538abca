/**
 * What the gateway reserves against a session's budget before it calls the
 * upstream, and what it settles once the answer is known. All amounts are
 * integer micro-USD: a price in USD per million tokens × tokens.
 */
import type { Tier } from "./router";
import { GatewayConfigError } from "./session-rpc";

export const TIERS: readonly Tier[] = ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"];

/** Output tokens reserved for a request that names no max_tokens; the gateway also sends it upstream as max_tokens. */
export const DEFAULT_MAX_TOKENS = 4096;
/** Prompt tokens are estimated as request bytes / 4 (about 4 bytes a token for English text and JSON), rounded up. */
export const BYTES_PER_TOKEN = 4;

export type Price = { input: number; output: number };
export type Prices = Record<string, Price>;
/**
 * An upstream's `usage`, untrusted: OpenAI's shape (prompt_tokens, which
 * counts cached tokens too, completion_tokens, prompt_tokens_details.cached_tokens)
 * or Anthropic's (input_tokens, which does not, cache_read_input_tokens,
 * cache_creation_input_tokens, output_tokens), as OpenAI-compatible proxies
 * of Anthropic models pass it on.
 */
export type Usage = {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: unknown;
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_read_input_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
};

/** What settle passes to the session service about one call's prompt cache: all its input tokens, cached included, and the cached ones. */
export type CacheUsage = { inputTokens: number; cachedInputTokens: number };

/**
 * A call's token counts: every input token (cached and cache writes included),
 * the output, and the cached input tokens read (undefined when the usage's
 * cache count is not a count, or is more than the input).
 */
export type TokenCounts = { input: number; output: number; cached: number | undefined };

/** A count when present: a non-negative safe integer; undefined when absent; NaN when present but not a count. */
function count(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : NaN;
}

/**
 * The token counts of a usage in either shape: OpenAI's when it has
 * prompt_tokens, else Anthropic's when it has input_tokens, where all input is
 * input_tokens + cache_read_input_tokens + cache_creation_input_tokens and the
 * cached input is cache_read_input_tokens. A missing count is 0. Undefined for
 * neither shape, or when an input or output count is not a non-negative integer.
 */
export function tokenCounts(usage: Usage | undefined): TokenCounts | undefined {
  if (typeof usage !== "object" || usage === null) return undefined;
  let counts: TokenCounts;
  if (usage.prompt_tokens !== undefined && usage.prompt_tokens !== null) {
    const details = typeof usage.prompt_tokens_details === "object" && usage.prompt_tokens_details !== null ? usage.prompt_tokens_details : {};
    counts = {
      input: count(usage.prompt_tokens) ?? 0,
      cached: count((details as { cached_tokens?: unknown }).cached_tokens) ?? 0,
      output: count(usage.completion_tokens) ?? 0,
    };
  } else if (usage.input_tokens !== undefined && usage.input_tokens !== null) {
    const read = count(usage.cache_read_input_tokens) ?? 0;
    counts = {
      input: (count(usage.input_tokens) ?? 0) + read + (count(usage.cache_creation_input_tokens) ?? 0),
      cached: read,
      output: count(usage.output_tokens) ?? 0,
    };
  } else {
    return undefined;
  }
  if (!Number.isSafeInteger(counts.input) || !Number.isSafeInteger(counts.output)) return undefined;
  if (!Number.isSafeInteger(counts.cached) || counts.cached! > counts.input) counts.cached = undefined;
  return counts;
}

/** The session service's cache accounting for a usage; undefined when the usage has no valid input and cached counts. */
export function cacheUsage(usage: Usage | undefined): CacheUsage | undefined {
  const counts = tokenCounts(usage);
  return counts?.cached === undefined ? undefined : { inputTokens: counts.input, cachedInputTokens: counts.cached };
}

/** The model's price; own properties only, so a model named "constructor" is not priced from Object.prototype. */
export function priceOf(prices: Prices, model: string): Price | undefined {
  return Object.hasOwn(prices, model) ? prices[model] : undefined;
}

/** DEFAULT_MAX_TOKENS, the var: a positive integer, or unset for the built-in default. */
export function defaultMaxTokens(configured: unknown): number {
  if (configured === undefined || configured === "") return DEFAULT_MAX_TOKENS;
  const n = typeof configured === "number" ? configured : Number(configured);
  if (!Number.isSafeInteger(n) || n < 1) throw new GatewayConfigError("DEFAULT_MAX_TOKENS must be a positive integer");
  return n;
}

const positive = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;

/**
 * The most output tokens the request can produce: max_completion_tokens or
 * max_tokens (the larger, when both), times `n` answers. Without either the
 * default applies and `cap` is true: the gateway sends it upstream, so the
 * reservation stays a worst case.
 */
export function outputLimit(body: Record<string, unknown>, fallback: number): { tokens: number; cap: boolean } {
  const asked = [body.max_completion_tokens, body.max_tokens].filter(positive);
  const n = positive(body.n) ? body.n : 1;
  if (asked.length > 0) return { tokens: Math.max(...asked) * n, cap: false };
  const absent = body.max_completion_tokens == null && body.max_tokens == null;
  return { tokens: fallback * n, cap: absent };
}

export const tokensOfBytes = (bytes: number): number => Math.ceil(bytes / BYTES_PER_TOKEN);

/** Worst case at one price, rounded up so that a reservation never undercounts; an unpriced model reserves 0. */
export function worstCase(price: Price | undefined, promptTokens: number, outputTokens: number): number {
  if (!price) return 0;
  return Math.ceil(promptTokens * price.input + outputTokens * price.output);
}

/**
 * The reservation, one amount per tier: a profile request is priced at each
 * tier's model (TIER_MODELS), since the session may answer any tier; an
 * explicit model at that model on all four.
 */
export function reservation(
  prices: Prices,
  target: { tierModels: Record<Tier, string> } | { model: string },
  promptTokens: number,
  outputTokens: number,
): Record<Tier, number> {
  const at = (model: string | undefined) => worstCase(model === undefined ? undefined : priceOf(prices, model), promptTokens, outputTokens);
  return Object.fromEntries(TIERS.map((tier) => [tier, at("model" in target ? target.model : target.tierModels[tier])])) as Record<Tier, number>;
}

/**
 * USD per million tokens × tokens = micro-USD, every input token (cached too)
 * at the input price; 0 for an unpriced model or a usage without valid token counts.
 */
export function costMicros(price: Price | undefined, usage: Usage | undefined): number {
  const counts = tokenCounts(usage);
  if (!price || !counts) return 0;
  const micros = Math.round(counts.input * price.input + counts.output * price.output);
  return Number.isSafeInteger(micros) && micros > 0 ? micros : 0;
}

const encoder = new TextEncoder();
const bytesOf = (v: unknown): number => (typeof v === "string" ? encoder.encode(v).byteLength : 0);

/**
 * UTF-8 bytes of the text one answer produced (a streamed delta or a whole
 * message): content, refusal, reasoning and tool-call names and arguments.
 */
export function producedBytes(part: unknown): number {
  if (typeof part !== "object" || part === null) return 0;
  const p = part as Record<string, unknown>;
  let bytes = bytesOf(p.content) + bytesOf(p.refusal) + bytesOf(p.reasoning_content) + bytesOf(p.reasoning);
  if (Array.isArray(p.tool_calls)) {
    for (const call of p.tool_calls) {
      const fn = (call as { function?: Record<string, unknown> } | null)?.function;
      bytes += bytesOf(fn?.name) + bytesOf(fn?.arguments);
    }
  }
  return bytes;
}

/** Produced bytes over the choices of a completion (`message`) or a stream chunk (`delta`). */
export function choicesBytes(choices: unknown, key: "message" | "delta"): number {
  if (!Array.isArray(choices)) return 0;
  return choices.reduce((sum: number, c) => sum + producedBytes((c as Record<string, unknown> | null)?.[key]), 0);
}

/** When the upstream reports no usage: the prompt estimate and the produced text at the same bytes per token. */
export function estimatedUsage(promptTokens: number, outputBytes: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: tokensOfBytes(outputBytes) };
}
