"""A minimal Hugging Face Hub on loopback, serving one dataset repository from a folder.

It answers the two requests huggingface_hub makes to fetch a preset: the repository's file
tree (``/api/datasets/<repo>/tree/<rev>``) and a file (``/datasets/<repo>/resolve/<rev>/<path>``,
HEAD and GET with the commit and ETag headers). Used to test the real download code offline.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def serve(repo_id: str, folder: Path) -> tuple[ThreadingHTTPServer, str]:
    files = {str(p.relative_to(folder)).replace("\\", "/"): p for p in sorted(folder.rglob("*")) if p.is_file()}
    tree_prefix = f"/api/datasets/{repo_id}/tree/"
    resolve_prefix = f"/datasets/{repo_id}/resolve/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _file(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            if path.startswith(resolve_prefix):
                rel = path[len(resolve_prefix):].split("/", 1)[1]
                if rel in files:
                    data = files[rel].read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    if not head:
                        self.wfile.write(data)
                    return
            if path.startswith(tree_prefix):
                body = json.dumps(
                    [{"type": "file", "path": k, "size": v.stat().st_size, "oid": COMMIT} for k, v in files.items()]
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                return
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):  # noqa: N802
            self._file(head=False)

        def do_HEAD(self):  # noqa: N802
            self._file(head=True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
