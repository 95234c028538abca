/** Worker entry: the HTTP router, plus the object and RPC classes the runtime binds by name. */
import type { Env } from "./env";
import { router } from "./http/router";

export { SessionObject } from "./objects/session-object";
export { RegistryObject } from "./objects/registry-object";
export { SessionAdmin, SessionService } from "./entrypoints";

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
