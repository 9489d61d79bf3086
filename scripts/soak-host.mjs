// The host of scripts/soak.sh: an MCP client of the official TypeScript
// SDK (as Claude Desktop is one) with 'ncmcp proxy' as its stdio server:
//
//   node soak-host.mjs SECONDS STDERR_FILE NCMCP [PROXY ARGS...]
//
// It calls nc_auth_check_status in a loop, one call after the other, for
// SECONDS, counting the calls that fail as the host sees them (an error
// answer, a result with isError, a timeout), and samples the proxy's
// resident set (VmRSS in /proc/PID/status) every second. Then it reads the
// proxy's peak resident set (VmHWM), sends it SIGQUIT, on which the Go
// runtime writes every goroutine's stack to stderr and exits, and counts
// the program's goroutines there (not the runtime's own). The proxy's
// stderr goes to STDERR_FILE.
//
// It prints key=value lines on stdout, then one "error SECONDS MESSAGE"
// line per failed call (at most 50): SECONDS since the loop began.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import fs from "node:fs";

const [secondsArg, stderrFile, ncmcp, ...proxyArgs] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!(seconds > 0) || !stderrFile || !ncmcp) {
  console.error("usage: node soak-host.mjs SECONDS STDERR_FILE NCMCP [PROXY ARGS...]");
  process.exit(2);
}
const tool = process.env.SOAK_TOOL || "nc_auth_check_status";

const stderrFd = fs.openSync(stderrFile, "w");
const transport = new StdioClientTransport({ command: ncmcp, args: ["proxy", ...proxyArgs], env: process.env, stderr: stderrFd });
const client = new Client({ name: "ncmcp-soak", version: "1" }, { capabilities: {} });
let closed = false;
const exited = new Promise((resolve) => {
  client.onclose = () => {
    closed = true;
    resolve();
  };
});
await client.connect(transport);
const pid = transport.pid;

// status returns a field of /proc/PID/status in kB, or null.
function status(field) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

const start = performance.now();
const elapsed = () => (performance.now() - start) / 1000;
const rss = []; // [seconds, kB]
const sample = () => {
  const kb = status("VmRSS");
  if (kb !== null) rss.push([elapsed(), kb]);
};
sample();
const sampler = setInterval(sample, 1000);

let ok = 0;
let failed = 0;
const errors = [];
const fail = (message) => {
  failed++;
  if (errors.length < 50) errors.push(`error ${elapsed().toFixed(1)} ${String(message).replace(/\s+/g, " ").slice(0, 300)}`);
};
while (!closed && elapsed() < seconds) {
  try {
    const res = await client.callTool({ name: tool, arguments: {} });
    if (res.isError) {
      fail("isError: " + (res.content || []).map((c) => c.text).join(""));
    } else {
      ok++;
    }
  } catch (e) {
    fail(e && e.message ? e.message : e);
  }
}
const ran = elapsed();
clearInterval(sampler);
const exitedEarly = closed;

// The calls are over (one at a time, the last one answered): the proxy is
// quiet. Its peak resident set, then its goroutines.
const hwm = status("VmHWM");
// The dump has one block per goroutine, headed "goroutine N gp=... [state]:";
// goroutine 0 is the scheduler's own stack, and those a runtime function
// created ("created by runtime.gcBgMarkStartWorkers ...") are the
// runtime's (GC workers, the finalizer, ...): the rest are the program's.
let goroutines = -1;
let runtimeGoroutines = -1;
if (!exitedEarly) {
  process.kill(pid, "SIGQUIT");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10000))]);
  fs.closeSync(stderrFd);
  const dump = fs.readFileSync(stderrFile, "utf8");
  if (/^SIGQUIT: quit/m.test(dump)) {
    const blocks = dump.split(/^(?=goroutine \d+ )/m).filter((b) => /^goroutine [1-9]\d* /.test(b));
    runtimeGoroutines = blocks.filter((b) => /^created by runtime\./m.test(b)).length;
    goroutines = blocks.length - runtimeGoroutines;
  }
}
await client.close().catch(() => {});

// The resident set after warm-up (the first quarter of the run, at most
// 60 s), in its first and last quarters: the median of each.
const warm = Math.min(60, ran / 4);
const after = rss.filter(([t]) => t >= warm);
const span = ran - warm;
const median = (xs) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const first = median(after.filter(([t]) => t < warm + span / 4).map(([, kb]) => kb));
const last = median(after.filter(([t]) => t >= ran - span / 4).map(([, kb]) => kb));

console.log(
  [
    `seconds=${ran.toFixed(1)}`,
    `calls_ok=${ok}`,
    `calls_failed=${failed}`,
    `proxy_pid=${pid}`,
    `proxy_exited_early=${exitedEarly ? 1 : 0}`,
    `rss_samples=${rss.length}`,
    `rss_warmup_seconds=${warm.toFixed(0)}`,
    `rss_first_quarter_kb=${first}`,
    `rss_last_quarter_kb=${last}`,
    `rss_min_kb=${Math.min(...rss.map(([, kb]) => kb))}`,
    `rss_max_kb=${Math.max(...rss.map(([, kb]) => kb))}`,
    `vmhwm_kb=${hwm ?? 0}`,
    `goroutines=${goroutines}`,
    `goroutines_runtime=${runtimeGoroutines}`,
    ...errors,
  ].join("\n"),
);
