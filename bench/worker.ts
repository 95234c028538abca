/**
 * Bench-only Worker: the deployed Worker plus the platform's floor, a Durable
 * Object that does nothing, and storage probes on bench-only subclasses of the
 * two object classes. Never deployed (bench/wrangler.toml is only used by `npm run bench`).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import app from "../src/index";
import { RegistryObject as ServedRegistryObject } from "../src/objects/registry-object";
import { shardFor, shardStub } from "../src/objects/registry-client";
import { SessionObject as ServedSessionObject } from "../src/objects/session-object";

export { SessionService } from "../src/index";

export class SessionObject extends ServedSessionObject {
  /**
   * Storage cost: the SQLite file (page-granular, so it includes the platform's
   * floor) and the session record's own serialized bytes.
   */
  storedBytes(): { database: number; entry: number } {
    const saved = this.ctx.storage.kv.get("session");
    return { database: this.ctx.storage.sql.databaseSize, entry: saved ? new TextEncoder().encode(JSON.stringify(saved)).length : 0 };
  }
}

export class RegistryObject extends ServedRegistryObject {
  /** SQLite file bytes, rows, and the rows' own bytes in this shard. */
  storedBytes(): { bytes: number; rows: number; rowBytes: number } {
    const r = this.ctx.storage.sql
      .exec<{ n: number; b: number | null }>(
        "SELECT COUNT(*) AS n, SUM(LENGTH(CAST(id AS BLOB)) + LENGTH(CAST(model AS BLOB)) + LENGTH(CAST(tier AS BLOB)) + 16) AS b FROM sessions",
      )
      .one();
    return { bytes: this.ctx.storage.sql.databaseSize, rows: r.n, rowBytes: r.b ?? 0 };
  }
}

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
    // The least any design that persists each request can cost: a warm object that does one kv.put.
    if (url.pathname === "/bench/floor-object-write") {
      await env.NOOP.get(env.NOOP.idFromName(`noop-${url.searchParams.get("k") ?? "0"}`)).write(false);
      return Response.json({});
    }
    // What creating a session must pay before any session logic: a new object with one write and an alarm.
    if (url.pathname === "/bench/floor-new-object") {
      await env.NOOP.get(env.NOOP.idFromName(`new-${url.searchParams.get("k") ?? "0"}`)).write(true);
      return Response.json({});
    }
    // The registry delivery that follows a creation, alone.
    if (url.pathname === "/bench/registry-write") {
      const id = `bench-row-${url.searchParams.get("k") ?? "0"}`;
      const row = { id, inc: "bench", version: 0, model: "m", tier: "SIMPLE" as const, createdAt: 1, expiresAt: Date.now() + 60_000 };
      await shardFor(env, id).deliver({ kind: "upsert", row });
      return Response.json({});
    }
    if (url.pathname === "/bench/storage") {
      const id = url.searchParams.get("id") ?? "";
      const shards = Number(url.searchParams.get("shards") ?? "16");
      const sessions = env.SESSIONS as unknown as DurableObjectNamespace<SessionObject>;
      const session = await sessions.get(sessions.idFromName(id)).storedBytes();
      const registry = await Promise.all(
        Array.from({ length: shards }, (_, k) => (shardStub(env, k) as unknown as DurableObjectStub<RegistryObject>).storedBytes()),
      );
      return Response.json({ session, registry });
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<BenchEnv>;
