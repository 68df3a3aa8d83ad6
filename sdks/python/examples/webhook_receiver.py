"""A callback receiver for Signoff, with only the standard library and `signoff.webhooks`.

    SIGNOFF_WEBHOOK_SECRET=whsec_... PORT=8080 python examples/webhook_receiver.py

Create requests with `callback_url="http://<this host>:8080/signoff/callback"` (a local address needs the server's
`SIGNOFF_ALLOW_PRIVATE_CALLBACKS=true`, for development only). Each decision arrives once per attempt; the receiver
checks the signature and timestamp, handles each `webhook-id` once, and answers 204 quickly.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from signoff import webhooks

SECRET = os.environ["SIGNOFF_WEBHOOK_SECRET"]  # the agent key's whsec_... secret
seen: set[str] = set()  # webhook-ids already handled; keep them in your database


class SignoffCallback(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))  # the raw bytes: verify before parsing
        try:
            message = webhooks.verify(self.headers, body, SECRET)
        except webhooks.WebhookVerificationError as refused:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(str(refused).encode())
            return
        if self.headers["webhook-id"] not in seen:  # a retry repeats the webhook-id: handle each message once
            seen.add(self.headers["webhook-id"])
            request = message["data"]
            decision = request["decision"]
            # Resume the agent's work here from request["state"], executing decision["args"] if approved.
            print(
                json.dumps(
                    {
                        "id": request["id"],
                        "status": request["status"],
                        "args": decision["args"],
                        "state": request["state"],
                    }
                ),
                flush=True,
            )
        self.send_response(204)  # any 2xx ends the retries
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), SignoffCallback)
    print(f"listening on {server.server_port}", flush=True)
    server.serve_forever()
