// Follow an eventvault log from JavaScript (Node 18+ or a browser): Server-Sent Events over
// fetch, resuming after a dropped connection from the last event id it saw.
//
//   node follow.mjs http://127.0.0.1:2113 [COUNT] [TOKEN]
//
// Prints one line per event: its global position, stream, type and data. Stops after COUNT
// events when given. In a browser, `new EventSource(url)` does the same for anonymous servers
// (EventSource cannot send an Authorization header; fetch can).

const [base, countArg, token] = process.argv.slice(2);
const wanted = countArg ? Number(countArg) : Infinity;
let lastId = null;
let seen = 0;

async function follow() {
  const headers = { accept: "text/event-stream" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (lastId !== null) headers["last-event-id"] = lastId;
  const response = await fetch(`${base}/v1/subscriptions/log?heartbeat=5`, { headers });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length === 0) continue; // a comment: the heartbeat
      const event = JSON.parse(data.join("\n"));
      lastId = id;
      console.log(`${event.global_position} ${event.stream_name} ${event.event_type} ${JSON.stringify(event.data)}`);
      if (++seen >= wanted) return;
    }
  }
}

while (seen < wanted) {
  try {
    await follow();
  } catch (error) {
    if (error.message.startsWith("HTTP 4")) throw error;
    console.error(`connection lost (${error.message}); resuming after ${lastId}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
