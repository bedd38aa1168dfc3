"""The parent side of the reliability tests' fork servers (tests/cases/lake_writer.py,
tests/cases/pipeline_runner.py): one server process imports Lance once and forks a fresh
child per trial; the test talks to it in JSON lines."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

ANSWER_TIMEOUT_S = 120


class ForkServerClient:
    """Starts ``script`` as a fork server and exchanges one JSON line per request."""

    def __init__(self, script: Path, author: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CURATA_")}
        env["CURATA_AUTHOR"] = author
        self.name = script.stem
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._answer() == {"ready": True}

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(
                f"the {self.name} server stopped answering (exit {self.proc.poll()})"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
