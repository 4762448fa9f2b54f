#!/usr/bin/env python3
"""A signing forward proxy for the partner API: every request it receives is signed as partner N (RFC 9421,
Ed25519, the way Remesa's partner client signs: `@method`, `@target-uri`, `content-digest` when there is a body,
`created`, `keyid`, `alg="ed25519"`, a fresh `nonce`) and sent on to the node; the node's answer comes back as it
is. With `--when-asked`, only requests that carry a `Signature` header (any value: the client's placeholder) are
signed and the others go on unsigned (api-fuzz.sh, so that "missing credentials" cases stay missing). It lets tools that cannot sign (schemathesis in `api-fuzz.sh`) reach the partner routes with credentials.

    sign_proxy.py --node http://127.0.0.1:8080 --partner-id 1 --seed-file data/dev/demo-partner-1.seed [--port 0]
    curl http://127.0.0.1:<port>/v1/partner/me

Prints `sign-proxy: listening on http://127.0.0.1:<port>` once it accepts connections. Devnet tooling: the seed is
read from its file and never printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BODY_BYTES_MAX = 16 * 1024 * 1024  # more than any node limit: the node, not the proxy, refuses large bodies
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
              "host", "content-length"}


def sign(key: Ed25519PrivateKey, keyid: str, method: str, target_uri: str, body: bytes | None) -> dict[str, str]:
    """The signature headers (and Content-Digest) for one request."""
    headers: dict[str, str] = {}
    components = ['"@method"', '"@target-uri"']
    lines = [f'"@method": {method}', f'"@target-uri": {target_uri}']
    if body is not None:
        digest = f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"
        headers["Content-Digest"] = digest
        components.append('"content-digest"')
        lines.append(f'"content-digest": {digest}')
    nonce = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    params = f'({" ".join(components)});created={int(time.time())};keyid="{keyid}";alg="ed25519";nonce="{nonce}"'
    base = "\n".join(lines + [f'"@signature-params": {params}'])
    signature = base64.b64encode(key.sign(base.encode())).decode()
    headers["Signature-Input"] = f"sig1={params}"
    headers["Signature"] = f"sig1=:{signature}:"
    return headers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--node", required=True, help="the node's base URL (http://host:port)")
    ap.add_argument("--partner-id", required=True, help="the partner's id (its keyid)")
    ap.add_argument("--seed-file", required=True, help="the partner's Ed25519 seed, 64 hex characters")
    ap.add_argument("--port", type=int, default=0, help="port to listen on, 127.0.0.1 (default: a free one)")
    ap.add_argument("--when-asked", action="store_true",
                    help="sign only requests that carry a Signature header (any value); pass the others unsigned")
    args = ap.parse_args()
    node = urllib.parse.urlsplit(args.node)
    if node.scheme != "http" or not node.hostname:
        ap.error("--node must be an http:// URL")
    with open(args.seed_file, encoding="ascii") as f:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(f.read().strip()))
    node_host = node.netloc

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *a: object) -> None:  # quiet: schemathesis keeps its own report
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > BODY_BYTES_MAX:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else None
            if body is None and self.command in ("POST", "PUT", "PATCH"):
                body = b""
            target = f"http://{node_host}{self.path}"
            # Signed afresh (any Signature header it carries is replaced); with --when-asked, a request without one
            # goes on unsigned, so a client's "missing credentials" cases still reach the node as such.
            signed = not args.when_asked or self.headers.get("Signature") is not None
            out = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
                   and (not signed or k.lower() not in ("signature", "signature-input", "content-digest"))}
            if signed:
                out.update(sign(key, args.partner_id, self.command, target, body))
            out["Host"] = node_host
            conn = http.client.HTTPConnection(node.hostname, node.port or 80, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=out)
                resp = conn.getresponse()
                data = resp.read()
            except OSError as e:
                self.send_error(502, f"node unreachable: {e}")
                return
            finally:
                conn.close()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def __getattr__(self, name: str):
            # Every method, the unusual ones too (TRACE, QUERY, …): the node answers them, not the proxy.
            if name.startswith("do_"):
                return self._forward
            raise AttributeError(name)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"sign-proxy: listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
