// A real SMTP listener for the browser tests: it speaks enough SMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
// QUIT) for the server's mailer to deliver to it, and keeps every message it receives.
import { createServer } from "node:net";

export async function startSmtp() {
  const messages = [];
  const server = createServer((socket) => {
    socket.setEncoding("utf8");
    let buffer = "";
    let data = null;
    const reply = (line) => socket.write(line + "\r\n");
    reply("220 localhost ESMTP test listener");
    socket.on("data", (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data !== null) {
          if (line === ".") {
            messages.push(data.join("\r\n"));
            data = null;
            reply("250 2.0.0 queued");
          } else {
            data.push(line.startsWith("..") ? line.slice(1) : line);
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") socket.write("250-localhost\r\n250 8BITMIME\r\n");
        else if (verb === "DATA") { data = []; reply("354 end with <CRLF>.<CRLF>"); }
        else if (verb === "QUIT") { reply("221 bye"); socket.end(); }
        else reply("250 OK");
      }
    });
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    url: `smtp://127.0.0.1:${server.address().port}`,
    messages,
    close: () => new Promise((done) => server.close(done)),
    // The first message that `matches` accepts, once it has arrived.
    async waitFor(matches, timeoutMs = 10000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(matches);
        if (found) return found;
        if (Date.now() > until) throw new Error(`no such message among ${messages.length}`);
        await new Promise((wait) => setTimeout(wait, 50));
      }
    },
  };
}

// The links in a message's text parts, each part decoded from base64 or quoted-printable as its headers say.
export function linksIn(message) {
  const parts = [...message.matchAll(/Content-Transfer-Encoding: *(\S+)\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)(?=\r\n--|$)/gi)];
  const decoded = parts.map(([, encoding, body]) => {
    if (/base64/i.test(encoding)) return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    if (/quoted-printable/i.test(encoding)) {
      return body.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
    }
    return body;
  });
  const text = parts.length ? decoded.join("\n") : message;
  return [...text.matchAll(/https?:\/\/[^\s"<>]+/g)].map((m) => m[0]);
}
