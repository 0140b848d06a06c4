"""The batch's memory: an SQLite file in the job's output folder.

One row per input (its output, settings fingerprint, state, frames, timings, error, output
checksum) and one per segment (state, attempts, worker, timings, piece checksum). Only the
driver writes it, in small transactions, so a driver killed at any moment leaves a
consistent file; ``--resume`` reads it to redo only what was not finished.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

MANIFEST_NAME = "err-stream-batch.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    output TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    settings TEXT NOT NULL,
    state TEXT NOT NULL,          -- pending, running, done, failed
    frames INTEGER,
    segments INTEGER,
    seconds REAL,
    error TEXT,
    checksum TEXT,                -- sha256 of the finished output
    started REAL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS segments (
    input_id INTEGER NOT NULL REFERENCES inputs(id),
    idx INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    state TEXT NOT NULL,          -- pending, running, done, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    piece TEXT,                   -- the restored piece's file until the input is joined
    checksum TEXT,
    seconds REAL,
    error TEXT,
    started REAL,
    finished REAL,
    PRIMARY KEY (input_id, idx)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    pid INTEGER NOT NULL,
    engine TEXT,
    resume INTEGER NOT NULL
);
"""


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a finished segment stays finished after a crash
        self.db.executescript(SCHEMA)

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / MANIFEST_NAME).exists()

    @classmethod
    def open(cls, folder: Path) -> Manifest:
        return cls(folder / MANIFEST_NAME)

    def close(self) -> None:
        self.db.close()

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, args)

    # -- runs
    def start_run(self, engine: str, resume: bool) -> int:
        cur = self._write("INSERT INTO runs(started, pid, engine, resume) VALUES (?,?,?,?)", (time.time(), os.getpid(), engine, int(resume)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        self._write("UPDATE runs SET finished=? WHERE id=?", (time.time(), run_id))

    # -- inputs
    def input(self, path: Path) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM inputs WHERE path=?", (str(path),)).fetchone()

    def inputs(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM inputs ORDER BY id").fetchall()

    def add_input(self, path: Path, output: Path, fingerprint: str, settings: dict[str, Any]) -> int:
        """Register an input (or reset one whose settings changed); returns its id."""
        row = self.input(path)
        blob = json.dumps(settings, sort_keys=True)
        if row is None:
            cur = self._write(
                "INSERT INTO inputs(path, output, fingerprint, settings, state) VALUES (?,?,?,?, 'pending')",
                (str(path), str(output), fingerprint, blob),
            )
            return int(cur.lastrowid)
        if row["fingerprint"] != fingerprint or row["output"] != str(output):
            self.db.execute("BEGIN")
            self._write("DELETE FROM segments WHERE input_id=?", (row["id"],))
            self._write(
                "UPDATE inputs SET output=?, fingerprint=?, settings=?, state='pending', frames=NULL, segments=NULL, "
                "seconds=NULL, error=NULL, checksum=NULL, started=NULL, finished=NULL WHERE id=?",
                (str(output), fingerprint, blob, row["id"]),
            )
            self.db.execute("COMMIT")
        return int(row["id"])

    def set_input(self, input_id: int, **fields: Any) -> None:
        keys = ", ".join(f"{k}=?" for k in fields)
        self._write(f"UPDATE inputs SET {keys} WHERE id=?", (*fields.values(), input_id))

    # -- segments
    def segments(self, input_id: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM segments WHERE input_id=? ORDER BY idx", (input_id,)).fetchall()

    def plan_segments(self, input_id: int, segments: list[tuple[int, int, float, float]]) -> None:
        """Record the input's segments (idx, frames, start, end) unless the same plan is there."""
        have = [(r["idx"], r["frames"], r["start"], r["end"]) for r in self.segments(input_id)]
        if have == [tuple(s) for s in segments]:
            return
        self.db.execute("BEGIN")
        self._write("DELETE FROM segments WHERE input_id=?", (input_id,))
        self.db.executemany(
            'INSERT INTO segments(input_id, idx, frames, start, "end", state) VALUES (?,?,?,?,?, \'pending\')',
            [(input_id, *s) for s in segments],
        )
        self._write("UPDATE inputs SET segments=? WHERE id=?", (len(segments), input_id))
        self.db.execute("COMMIT")

    def set_segment(self, input_id: int, idx: int, **fields: Any) -> None:
        keys = ", ".join(f'"{k}"=?' for k in fields)
        self._write(f"UPDATE segments SET {keys} WHERE input_id=? AND idx=?", (*fields.values(), input_id, idx))

    def segment_started(self, input_id: int, idx: int, worker: str | None) -> None:
        self._write(
            "UPDATE segments SET state='running', attempts=attempts+1, worker=?, started=?, error=NULL WHERE input_id=? AND idx=?",
            (worker, time.time(), input_id, idx),
        )
