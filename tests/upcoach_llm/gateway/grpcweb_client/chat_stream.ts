// A real grpc-web client (npm @connectrpc/connect-web, createGrpcWebTransport) for the tests:
// streams one chat from the gateway and prints one JSON line per message received, then a summary.
//
//   tsx chat_stream.ts <base-url> <prompt> [--context <coaching context>] [--model <m>] [--key <k>]
//                      [--locale <BCP 47 tag>]
//
// Exit 0 with {"summary": ...} last; on an RPC error, {"error": {"code", "message", "details"}}
// and exit 3, each detail as {"type", "value"} (the google.rpc message, base64).
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Role } from "../../../../build/ts/upcoach/llm/v1/common_pb.js";
import { RouterService } from "../../../../build/ts/upcoach/llm/v1/router_pb.js";

function option(name: string): string {
  const index = process.argv.indexOf(name);
  return index > 0 ? process.argv[index + 1] : "";
}

const [baseUrl, prompt] = process.argv.slice(2);
const key = option("--key");
const transport = createGrpcWebTransport({ baseUrl });
const client = createClient(RouterService, transport);
const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};

let messages = 0;
let text = "";
let model = "";
let finishReason = 0;
try {
  for await (const reply of client.chatStream(
    {
      model: option("--model"),
      coachingContext: option("--context"),
      locale: option("--locale"),
      messages: [{ role: Role.USER, content: prompt }],
      sampling: { maxTokens: 24, temperature: 0 },
    },
    { headers },
  )) {
    messages += 1;
    if (reply.route) model = reply.route.model;
    text += reply.text;
    if (reply.finishReason) finishReason = reply.finishReason;
    console.log(JSON.stringify({ text: reply.text, route: reply.route?.model ?? null }));
  }
} catch (err) {
  const error = ConnectError.from(err);
  const details = error.details.map((d) =>
    "type" in d
      ? { type: d.type, value: Buffer.from(d.value).toString("base64") }
      : { type: d.desc.typeName },
  );
  const message = error.rawMessage;
  console.log(JSON.stringify({ error: { code: Code[error.code], message, details } }));
  process.exit(3);
}
console.log(JSON.stringify({ summary: { messages, text, model, finishReason } }));
