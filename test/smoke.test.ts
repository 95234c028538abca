import { env, exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import { testClock } from "./support/worker";

it("health", async () => {
  const res = await exports.default.fetch("http://x/health");
  expect(await res.json()).toEqual({ ok: true });
});

it("rpc error shape", async () => {
  const e = await exports.SessionService.setSession("a", "", "SIMPLE").catch((e: unknown) => e);
  console.log("ERR", e, Object.keys(e as object), (e as Error).message, (e as Error).name);
  const s = await exports.SessionService.setSession("smoke-1", "m", "SIMPLE");
  console.log(s);
  testClock.advance(10);
  const t = await exports.SessionService.touchSession("smoke-1");
  console.log(t);
});
