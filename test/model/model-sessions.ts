/**
 * The independent model behind the facade's method names, so a history calls
 * the model and a back end the same way. Resolve hashes as docs/http-api.md
 * ("Resolve", step 4) documents (the last user message with the tools the last assistant message called).
 */
import type { Tier } from "../../src/session/types";
import { modelHash } from "./hash";
import { SessionModel, type ModelConfig, type ModelUsage } from "./session-model";

/** The resolve inputs histories send: a named session, one user message, at most one tool call after it. */
export interface ResolveCall {
  sessionId: string;
  body: {
    model: string;
    messages: (
      | { role: "user"; content: string }
      | { role: "assistant"; content: null; tool_calls: { id: string; type: "function"; function: { name: string; arguments: string } }[] }
    )[];
  };
  routed?: { model: string; tier: Exclude<Tier, ""> };
  costMicros?: number;
  reserveMicros?: number;
}

export function modelSessions(config: ModelConfig, now: () => number) {
  const model = new SessionModel(config, now);
  return {
    model,
    getSession: async (id: string) => model.get(id),
    setSession: async (id: string, m: string, tier: Tier, userExplicit?: boolean) => model.set(id, m, tier, userExplicit),
    touchSession: async (id: string) => model.touch(id),
    recordRequestHash: async (id: string, hash: string) => model.recordHash(id, hash),
    escalateSession: async (id: string) => model.escalate(id),
    addSessionCost: async (id: string, micros: number, usage?: ModelUsage) => model.addCost(id, micros, usage),
    getSessionCostUSD: async (id: string) => model.getCostUSD(id),
    clearSession: async (id: string) => model.clear(id),
    settle: async (id: string, reservationId: string, costMicros: number, usage?: ModelUsage) => model.settle(id, reservationId, costMicros, usage),
    setBudget: async (id: string, budgetMicros: number | null) => model.setBudget(id, budgetMicros),
    resolve: async (input: ResolveCall) => {
      const messages = input.body.messages;
      const user = messages.findLast((m) => m.role === "user")!;
      const assistant = messages.findLast((m) => m.role === "assistant");
      const tools = assistant?.role === "assistant" ? assistant.tool_calls.map((c) => c.function.name) : [];
      const hash = await modelHash(user.content, tools);
      return model.resolve({
        sessionId: input.sessionId,
        model: input.body.model,
        routed: input.routed,
        hash,
        costMicros: input.costMicros,
        reserveMicros: input.reserveMicros,
      });
    },
    getStats: async () => model.stats(),
    clearAll: async () => model.clearAll(),
  };
}
