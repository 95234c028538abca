/**
 * Prompt-cache affinity, as pure functions: when a session becomes
 * cache-sticky, for which provider, and for how long. A provider keeps a
 * prompt's prefix cached for a few minutes; while the session's cache is warm,
 * keeping its model is worth more than a routed upgrade.
 */

/** Tokens are estimated as UTF-8 bytes ÷ 3 (reference DOSRouter). */
export const BYTES_PER_TOKEN = 3;
/** A request is large when one message reaches 3,000 estimated tokens… */
export const LARGE_MESSAGE_BYTES = 3_000 * BYTES_PER_TOKEN;
/** …or all of them together reach 5,000. */
export const LARGE_REQUEST_BYTES = 5_000 * BYTES_PER_TOKEN;

const MINUTE_MS = 60_000;

/** How long each provider keeps a prompt prefix cached (reference DOSRouter), in ms; `default` for any other. */
export const DEFAULT_PROVIDER_CACHE_TTLS: Readonly<Record<string, number>> = {
  anthropic: 5 * MINUTE_MS,
  openai: 5 * MINUTE_MS,
  deepseek: 5 * MINUTE_MS,
  google: 5 * MINUTE_MS,
  groq: 5 * MINUTE_MS,
  vllm: 10 * MINUTE_MS,
  dosrouter: 10 * MINUTE_MS,
  default: 5 * MINUTE_MS,
};

/** A request's size, as the gateway's body gives it. */
export interface RequestSize {
  /** UTF-8 bytes of the largest message. */
  largestMessageBytes: number;
  /** UTF-8 bytes of all messages together. */
  totalBytes: number;
}

export function isLarge(size: RequestSize): boolean {
  return size.largestMessageBytes >= LARGE_MESSAGE_BYTES || size.totalBytes >= LARGE_REQUEST_BYTES;
}

/** A model ID's provider: its prefix before the first "/", or `default` when it has none. */
export function providerOf(model: string): string {
  const slash = model.indexOf("/");
  return slash > 0 ? model.slice(0, slash) : "default";
}

/** The provider's prefix-cache TTL: its own, else `default`'s. */
export function cacheTtlMs(provider: string, ttls: Readonly<Record<string, number>>): number {
  return Object.hasOwn(ttls, provider) ? ttls[provider]! : (ttls.default ?? DEFAULT_PROVIDER_CACHE_TTLS.default!);
}

/** Sticky while idle no longer than the provider's TTL. */
export function stickyAt(sticky: string | undefined, lastUsedAt: number, now: number, ttls: Readonly<Record<string, number>>): boolean {
  return sticky !== undefined && now - lastUsedAt <= cacheTtlMs(sticky, ttls);
}
