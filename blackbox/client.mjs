/** A tiny HTTP client for the black-box contract tests: they see only what a gateway sees. */
export const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8787";
export const API_TOKEN = process.env.SESSION_API_TOKEN_FOR_TESTS ?? "dev-token";
export const ADMIN_TOKEN = process.env.SESSION_ADMIN_TOKEN_FOR_TESTS ?? "dev-admin-token";

export async function call(method, path, { token = API_TOKEN, body, rawBody, headers = {} } = {}) {
  const h = { ...headers };
  if (token !== null) h.authorization = `Bearer ${token}`;
  const res = await fetch(BASE_URL + path, {
    method,
    headers: h,
    body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let json;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

export const sessionPath = (id, suffix = "") => `/v1/sessions/${encodeURIComponent(id)}${suffix}`;
export const freshId = (prefix) => `${prefix}-${crypto.randomUUID()}`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The registry is an index that converges: a change shows in stats once its delivery lands,
 * normally within milliseconds of the answer (docs/design.md, "The registry"). Polls `check`
 * until it stops throwing, for at most `withinMs`, and rethrows its last failure.
 */
export async function eventually(check, withinMs = 10_000) {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}
