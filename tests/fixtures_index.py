"""A package index on 127.0.0.1 for the derivation tests: PEP 691 JSON or PEP 503 HTML project pages, files
served with HTTP Range support, and a count of every request and byte, so a test can tell a ranged read
from a download and a cached run from a fresh one. Wheels are built with zipfile around gcc-built libraries."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixtures_elf import gcc_shared


@dataclass
class Served:
    filename: str
    data: bytes
    yanked: bool | str = False
    upload_time: str = "2026-01-01T00:00:00Z"
    requires_python: str | None = None
    metadata: bytes | None = None  # served as <file>.metadata (PEP 658) when set


@dataclass
class FakeIndex:
    projects: dict[str, list[Served]] = field(default_factory=dict)
    html: bool = False
    requests: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    url: str = ""

    def add(self, project: str, served: Served) -> None:
        self.projects.setdefault(project, []).append(served)

    def page(self, project: str) -> tuple[bytes, str]:
        files = self.projects.get(project)
        if files is None:
            raise KeyError(project)
        if self.html:
            links = []
            for f in files:
                attrs = f' data-yanked="{f.yanked if isinstance(f.yanked, str) else ""}"' if f.yanked else ""
                attrs += f' data-requires-python="{f.requires_python}"' if f.requires_python else ""
                attrs += ' data-core-metadata="true"' if f.metadata else ""
                links.append(f'<a href="../../files/{f.filename}#sha256={_sha(f.data)}"{attrs}>{f.filename}</a>')
            return ("<html><body>" + "\n".join(links) + "</body></html>").encode(), "text/html"
        doc = {"meta": {"api-version": "1.1"}, "name": project, "files": [
            {"filename": f.filename, "url": f"../../files/{f.filename}", "hashes": {"sha256": _sha(f.data)},
             "size": len(f.data), "upload-time": f.upload_time, "yanked": f.yanked,
             "requires-python": f.requires_python, **({"core-metadata": True} if f.metadata else {})}
            for f in files]}
        return json.dumps(doc).encode(), "application/vnd.pypi.simple.v1+json"

    def file(self, name: str) -> bytes | None:
        for files in self.projects.values():
            for f in files:
                if f.filename == name:
                    return f.data
                if f.metadata and name == f.filename + ".metadata":
                    return f.metadata
        return None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve(index: FakeIndex) -> Iterator[FakeIndex]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            index.requests.append(f"{self.path} {self.headers.get('Range', '')}".strip())
            parts = self.path.strip("/").split("/")
            if parts[0] == "simple" and len(parts) == 2:
                try:
                    body, ctype = index.page(parts[1])
                except KeyError:
                    self.send_error(404)
                    return
                self._send(200, body, ctype)
                return
            data = index.file(parts[-1]) if parts[0] == "files" else None
            if data is None:
                self.send_error(404)
                return
            wanted = self.headers.get("Range")
            if wanted:
                start_text, _, end_text = wanted.removeprefix("bytes=").partition("-")
                if start_text == "":
                    start, end = max(0, len(data) - int(end_text)), len(data) - 1
                else:
                    start, end = int(start_text), min(int(end_text or len(data) - 1), len(data) - 1)
                self._send(206, data[start : end + 1], "application/octet-stream",
                           {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
            else:
                self._send(200, data, "application/octet-stream")

        def _send(self, code: int, body: bytes, ctype: str, headers: Mapping[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            index.bytes_sent += len(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()


def wheel(name: str, version: str, tag: str, files: Mapping[str, bytes], *, requires: tuple[str, ...] = (),
          requires_python: str | None = None, stored: tuple[str, ...] = ()) -> tuple[str, bytes, bytes]:
    """(file name, wheel bytes, METADATA bytes) of a wheel holding `files` (deflated unless named in `stored`)."""
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += f"Requires-Python: {requires_python}\n" if requires_python else ""
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    content = dict(files)
    content[f"{dist}/METADATA"] = meta.encode()
    content[f"{dist}/WHEEL"] = f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()
    record = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
                     f"{len(d)}\n" for n, d in content.items()) + f"{dist}/RECORD,,\n"
    content[f"{dist}/RECORD"] = record.encode()
    filename = f"{name}-{version}-{tag}.whl"
    path = Path(filename)
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in content.items():
            zf.writestr(n, d, compress_type=zipfile.ZIP_STORED if n in stored else zipfile.ZIP_DEFLATED)
    del path
    return filename, buf.getvalue(), meta.encode()


def c_library(root: Path, soname: str, source: str, *links: Path) -> Path:
    """A shared object `soname` built from C `source`, linking the libraries `links` (DT_NEEDED by soname)."""
    args = [f"-Wl,-soname,{soname}", "-Wl,--no-as-needed"]
    for lib in links:
        args += [f"-L{lib.parent}", f"-l:{lib.name}"]
    return gcc_shared(root / soname, source, *args)
