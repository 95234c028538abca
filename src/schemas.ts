/**
 * The API's value schemas, in zod: the same objects validate every request
 * (HTTP and RPC) and generate the OpenAPI document, so the two cannot drift.
 * Each schema's errors are short phrases ("must be a string"); `parseInput`
 * prefixes the field's path, so a caller reads "routed.tier must be one of ...".
 */
import { z } from "zod";
import { invalidRequest, SessionError } from "./session/errors";
import { MAX_MESSAGES } from "./requests/messages";
import { MAX_USER_ID_LENGTH } from "./requests/user-scope";
import { TIERS } from "./session/types";
import {
  hasControlChars,
  LONE_SURROGATE,
  MAX_HASH_LENGTH,
  MAX_MODEL_LENGTH,
  MAX_SESSION_ID_LENGTH,
  MAX_TOOL_NAMES,
  sessionIdProblem,
} from "./session/validate";

/**
 * Longest message `deriveSessionId` and `hashRequestContent` take, where no
 * resolve body limit applies (RPC): the resolve body limit, 4 Mi characters, so
 * a string costs the isolate at most what the worst resolve body does.
 */
export const MAX_MESSAGE_LENGTH = 4 * 1024 * 1024;

const TIER_LIST = '"SIMPLE", "MEDIUM", "COMPLEX", "REASONING"';

export const sessionId = z
  .string({ error: "session ID must be a non-empty string" })
  .min(1, { error: "session ID must be a non-empty string" })
  .max(MAX_SESSION_ID_LENGTH, { error: `session ID must be at most ${MAX_SESSION_ID_LENGTH} characters` })
  .check(z.refine((id) => sessionIdProblem(id) === undefined, { error: (issue) => sessionIdProblem(issue.input as string) }))
  .meta({
    description: 'A conversation\'s session ID: 1–256 UTF-16 code units, not "." or "..", with no control, lone-surrogate or format (Cf) characters.',
  });

/** A name a caller gives (a model, a deployment, a provider): 1 to `max` characters, well-formed, no control characters. */
const name = (max: number) =>
  z
    .string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .max(max, { error: `must be at most ${max} characters` })
    .check(z.refine((m) => !hasControlChars(m), { error: "must not contain control characters" }))
    .check(z.refine((m) => !LONE_SURROGATE.test(m), { error: "must be well-formed UTF-16 (no lone surrogate halves)" }));

export const model = name(MAX_MODEL_LENGTH);

export const tier = z.enum([...TIERS, ""], { error: `must be one of ${TIER_LIST} or ""` });
export const routedTier = z.enum(TIERS, { error: `must be one of ${TIER_LIST}` });

export const micros = z
  .int({ error: "must be a non-negative safe integer (micro-USD)" })
  .min(0, { error: "must be a non-negative safe integer (micro-USD)" })
  .meta({ description: "Integer micro-USD (1 USD = 1,000,000)." });

/** Longest deployment or provider name: an endpoint URL, a region or a key ID fits. */
export const MAX_DEPLOYMENT_LENGTH = 256;

/** An opaque name the gateway gives: a deployment (endpoint, region, key ID) or a provider. */
export const opaqueName = name(MAX_DEPLOYMENT_LENGTH);

/** A resolve's worst-case cost: one amount, or one per tier, all four named. */
export const reserveMicros = z
  .union(
    [
      micros,
      z.strictObject(
        { SIMPLE: micros, MEDIUM: micros, COMPLEX: micros, REASONING: micros },
        { error: 'must be a non-negative integer or an object of all four tiers to integers, {"SIMPLE","MEDIUM","COMPLEX","REASONING"}' },
      ),
    ],
    { error: 'must be a non-negative integer or an object of all four tiers to integers, {"SIMPLE","MEDIUM","COMPLEX","REASONING"}' },
  )
  .meta({
    description:
      "This request's worst-case cost in micro-USD, held against the session's budget until settled: one amount, or one per tier (graceful mode answers for a lower tier whose amount fits).",
  });

const tokens = z.int({ error: "must be a non-negative safe integer (tokens)" }).min(0, { error: "must be a non-negative safe integer (tokens)" });

const USAGE_SHAPE = "must be an object {inputTokens, cachedInputTokens} of non-negative integers";

/**
 * One call's input tokens, reported with settle or cost. `inputTokens` counts all of
 * them, cached ones included: OpenAI `usage.prompt_tokens`; Anthropic `input_tokens +
 * cache_read_input_tokens + cache_creation_input_tokens`. `cachedInputTokens` counts the
 * ones read from the provider's prompt cache: OpenAI
 * `usage.prompt_tokens_details.cached_tokens`; Anthropic `cache_read_input_tokens`.
 */
export const usage = z
  .strictObject({ inputTokens: tokens, cachedInputTokens: tokens }, { error: USAGE_SHAPE })
  .check(
    z.refine((u) => u.cachedInputTokens <= u.inputTokens, {
      path: ["cachedInputTokens"],
      error: "must be at most usage.inputTokens (inputTokens counts cached tokens too)",
    }),
  )
  .meta({
    description:
      "This call's input tokens: `inputTokens` all of them, cached ones included (OpenAI `usage.prompt_tokens`; Anthropic `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`), `cachedInputTokens` those read from the provider's prompt cache (OpenAI `usage.prompt_tokens_details.cached_tokens`; Anthropic `cache_read_input_tokens`).",
  });

/** Longest reservation ID a settle accepts: far above the IDs resolve makes. */
export const MAX_RESERVATION_ID_LENGTH = 128;

export const reservationId = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(MAX_RESERVATION_ID_LENGTH, { error: `must be at most ${MAX_RESERVATION_ID_LENGTH} characters` })
  .meta({ description: "The reservationId resolve answered." });

export const hash = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(MAX_HASH_LENGTH, { error: `must be at most ${MAX_HASH_LENGTH} characters` });

export const message = z.string({ error: "must be a string" }).max(MAX_MESSAGE_LENGTH, { error: `must be at most ${MAX_MESSAGE_LENGTH} characters` });

export const toolNames = z
  .array(z.string({ error: "must be a string" }), { error: "must be an array of strings" })
  .max(MAX_TOOL_NAMES, { error: `must have at most ${MAX_TOOL_NAMES} names` });

const userId = z
  .string({ error: "must be a string (the end user's identifier)" })
  .max(MAX_USER_ID_LENGTH, { error: `must be at most ${MAX_USER_ID_LENGTH} characters` })
  .nullable()
  .optional();

/**
 * The LLM request body, in OpenAI chat-completions or Anthropic messages shape.
 * Only the fields the session layer reads are checked; every other field passes
 * through, since the upstream is the judge of its own schema.
 */
export const chatBody = z
  .looseObject(
    {
      model: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }),
      messages: z
        .array(z.looseObject({}, { error: "must be an object" }), { error: "must be an array" })
        .max(MAX_MESSAGES, { error: `must have at most ${MAX_MESSAGES} messages` }),
      user: userId,
      safety_identifier: userId,
      metadata: z.unknown().optional().meta({ description: "Anthropic request metadata; `metadata.user_id` names the end user." }),
    },
    { error: "must be an object (the LLM request body)" },
  )
  .meta({ description: "The LLM request body (OpenAI chat-completions or Anthropic messages shape)." });

export const sessionView = z.object({
  id: z.string(),
  model: z.string(),
  tier,
  createdAt: z.number().meta({ description: "unix ms" }),
  lastUsedAt: z.number().meta({ description: "unix ms" }),
  requestCount: z.number(),
  recentHashes: z.array(z.string()),
  strikes: z.number(),
  escalated: z.boolean(),
  userExplicit: z.boolean(),
  sessionCostMicros: z.number(),
  budgetMicros: z.number().nullable().meta({ description: "the session's own budget, else SESSION_BUDGET_MICROS; null for none" }),
  reservedMicros: z.number().meta({ description: "held by open reservations" }),
  inFlight: z.number().meta({ description: "open reservations" }),
  cacheKey: z.string().nullable().meta({ description: "the session's prompt-cache key; null until a resolve made one" }),
  deployment: z.string().nullable().meta({ description: "the pinned deployment; null for none" }),
  inputTokens: z.number().meta({ description: "input tokens reported with settle and cost, cached ones included; 0 when none were" }),
  cachedInputTokens: z.number().meta({ description: "of those, the ones read from the provider's prompt cache" }),
  paused: z.boolean().meta({ description: "an operator paused the session: resolve answers 423 session_paused" }),
  adminPinned: z.boolean().meta({ description: "an operator pinned the model and tier (PUT /v1/sessions/{id}/pin)" }),
});

/** A journal cursor: the seq of the last event seen; 0 or absent for all. */
export const seqCursor = z
  .int({ error: "must be a non-negative integer (an event's seq)" })
  .min(0, { error: "must be a non-negative integer (an event's seq)" })
  .max(Number.MAX_SAFE_INTEGER, { error: "must be a non-negative integer (an event's seq)" })
  .default(0)
  .meta({ description: "the seq of the last event seen; events after it are answered" });

/** One journal event; docs/http-api.md lists each type's fields. */
export const journalEvent = z
  .object({
    seq: z.number().meta({ description: "strictly increasing per session ID" }),
    at: z.number().meta({ description: "unix ms" }),
    type: z.enum([
      "created",
      "model_changed",
      "escalated",
      "cache_sticky",
      "budget_threshold",
      "paused",
      "resumed",
      "pinned",
      "unpinned",
      "budget_changed",
      "ended",
    ]),
    actor: z.enum(["admin", "api"]).optional().meta({ description: "who asked, for a change a command made: an operator (admin) or a gateway (api)" }),
  })
  .loose();

export const sessionCost = z.object({ sessionCostMicros: z.number(), costUSD: z.number() });

/** A `[a-z_]+` path element for messages: `routed.tier`, `toolNames[1]`, `body.messages[3]`. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

/** Fields whose problems are the session ID's: 400 `invalid_session_id`. */
const ID_FIELDS: ReadonlySet<PropertyKey> = new Set(["id", "sessionId"]);

/**
 * Parses `input` with `schema`, or throws the first problem as a SessionError:
 * `invalid_session_id` for the session ID, else `invalid_request` naming the field.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  if (issue.path.length === 1 && ID_FIELDS.has(issue.path[0]!)) throw new SessionError("invalid_session_id", issue.message);
  if (issue.path.length === 0) throw invalidRequest("input", issue.message);
  throw invalidRequest(formatPath(issue.path), issue.message);
}
