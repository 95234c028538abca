/**
 * Bench-only Worker: the deployed Worker plus the platform's floor, a Durable
 * Object that does nothing, and a storage probe. Never deployed
 * (bench/wrangler.toml is only used by `npm run bench`).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import app from "../src/index";
import { shardFor, shardStub } from "../src/objects/registry-client";

export { SessionObject, RegistryObject, SessionService } from "../src/index";

/** The floor: reaching a Durable Object costs this much before any session logic runs. */
export class NoopObject extends DurableObject {
  ping(): null {
    return null;
  }

  write(alarm: boolean): null {
    this.ctx.storage.kv.put("v", { a: 1 });
    if (alarm) void this.ctx.storage.setAlarm(Date.now() + 3_600_000);
    return null;
  }

  override alarm(): void {}
}

interface BenchEnv extends Env {
  NOOP: DurableObjectNamespace<NoopObject>;
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/bench/floor-object") {
      await env.NOOP.get(env.NOOP.idFromName(`noop-${url.searchParams.get("k") ?? "0"}`)).ping();
      return Response.json({});
    }
    // What creating a session must pay before any session logic: a new object with one write and an alarm.
    if (url.pathname === "/bench/floor-new-object") {
      await env.NOOP.get(env.NOOP.idFromName(`new-${url.searchParams.get("k") ?? "0"}`)).write(true);
      return Response.json({});
    }
    // The registry write a creation awaits, alone.
    if (url.pathname === "/bench/registry-write") {
      const id = `bench-row-${url.searchParams.get("k") ?? "0"}`;
      await shardFor(env, id).upsert({ id, model: "m", tier: "SIMPLE", createdAt: 1 });
      return Response.json({});
    }
    if (url.pathname === "/bench/storage") {
      const id = url.searchParams.get("id") ?? "";
      const shards = Number(url.searchParams.get("shards") ?? "16");
      const session = await env.SESSIONS.get(env.SESSIONS.idFromName(id)).storedBytes();
      const registry = await Promise.all(
        Array.from({ length: shards }, (_, k) => shardStub(env, k).storedBytes()),
      );
      return Response.json({ session, registry });
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<BenchEnv>;
