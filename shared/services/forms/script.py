"""`boomerang.js`, the one file a store embeds, served by the API with caching headers.

Read once per container and trimmed (indentation and whole-line comments: the file stays readable in
the repository, and no build step or minifier dependency is needed). The ETag is its content hash,
so a browser revalidates with a 304 and a deploy that changes it is picked up within the max-age.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

SCRIPT_PATH = Path(__file__).with_name("boomerang.js")
MAX_AGE_S = 3600  # an hour in browsers and CDNs; a day of stale-while-revalidate


@dataclass(frozen=True)
class Script:
    body: str
    etag: str

    @property
    def gzip_size(self) -> int:
        return len(gzip.compress(self.body.encode(), compresslevel=9))

    def headers(self) -> dict[str, str]:
        return {
            "Cache-Control": f"public, max-age={MAX_AGE_S}, stale-while-revalidate=86400",
            "ETag": self.etag,
            "Access-Control-Allow-Origin": "*",  # public, the same for every store: any page may load it
            "X-Content-Type-Options": "nosniff",
        }


def trim(source: str) -> str:
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


@functools.cache
def script() -> Script:
    body = trim(SCRIPT_PATH.read_text(encoding="utf-8"))
    return Script(body, '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"')
