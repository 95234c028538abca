#!/usr/bin/env node
/** Local dev works out of the box: create .dev.vars (local tokens) from the committed example when missing. */
import { copyFileSync, existsSync } from "node:fs";

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (API token dev-token, admin token dev-admin-token)");
}
