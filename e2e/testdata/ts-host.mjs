// An MCP client of the official TypeScript SDK with 'ncmcp proxy' as its
// stdio server: node ts-host.mjs NCMCP [PROXY ARGS...]. It lists the tools,
// calls nc_auth_check_status with a progress token, with TS_HOST_ELICIT=1
// also nc_auth_provision_access (whose server asks the client), and prints
// what it saw as one JSON object.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema, ProgressNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [ncmcp, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command: ncmcp, args: ["proxy", ...args], env: process.env, stderr: "inherit" });
const client = new Client({ name: "ts-host", version: "1" }, { capabilities: { elicitation: {} } });
let elicited = 0;
client.setRequestHandler(ElicitRequestSchema, async () => {
  elicited++;
  return { action: "accept", content: { acknowledged: true } };
});
// The progress notifications are recorded as they arrive: the SDK's own
// onprogress drops one that shares a read with its request's response.
const progress = [];
client.setNotificationHandler(ProgressNotificationSchema, (n) => {
  progress.push(n.params.message);
});
await client.connect(transport);
const tools = await client.listTools();
const res = await client.callTool({ name: "nc_auth_check_status", arguments: {}, _meta: { progressToken: "p1" } });
if (process.env.TS_HOST_ELICIT === "1") {
  await client.callTool({ name: "nc_auth_provision_access", arguments: {} });
}
console.log(JSON.stringify({
  server: client.getServerVersion(),
  tools: tools.tools.map((t) => t.name),
  text: res.content.map((c) => c.text).join(""),
  isError: !!res.isError,
  progress,
  elicited,
}));
await client.close();
