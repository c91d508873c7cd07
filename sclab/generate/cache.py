"""The on-disk generation cache: one SQLite file, keyed on everything that determines a sample.

A key is (model fingerprint, messages, sampling params without n, seed, sample index), so a
re-run — or another method that shares turn 1 — reads its samples instead of generating them.

    >>> from sclab.generate.cache import GenerationCache
    >>> c = GenerationCache(":memory:"); c.put({"k": "v"}, {"text": "hi"}); c.get({"k": "v"})["text"]
    'hi'
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path


def key_of(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class GenerationCache:
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # timeout: two processes writing the same cache wait on each other rather than fail
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS gen (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    def get(self, key_obj) -> dict | None:
        return self.get_many([key_obj])[0]

    def get_many(self, key_objs: list) -> list[dict | None]:
        keys = [key_of(k) for k in key_objs]
        found: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[i:i + 500]
                q = f"SELECT key, value FROM gen WHERE key IN ({','.join('?' * len(chunk))})"
                found.update(self._db.execute(q, chunk).fetchall())
        return [json.loads(found[k]) if k in found else None for k in keys]

    def put(self, key_obj, value: dict) -> None:
        self.put_many([(key_obj, value)])

    def put_many(self, items: list[tuple[object, dict]]) -> None:
        rows = [(key_of(k), json.dumps(v)) for k, v in items]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO gen (key, value) VALUES (?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM gen").fetchone()[0]
