"""The app's background consolidation: a real child process, started without preexec_fn, at lower priority."""
import ast
import inspect
import os
import time
from pathlib import Path

import chatbot.learning.jobs as jobs
from chatbot.learning.jobs import spawn_consolidation


def test_no_preexec_fn_in_a_threaded_server():
    # Python documents preexec_fn as unsafe in a process with threads (the app's server): it can deadlock.
    tree = ast.parse(inspect.getsource(jobs))
    used = [k for node in ast.walk(tree) if isinstance(node, ast.Call) for k in node.keywords if k.arg == "preexec_fn"]
    assert used == []


def test_background_consolidation_runs_at_lower_priority(tmp_path):
    home = tmp_path / "home"
    proc = spawn_consolidation(home)
    try:
        deadline = time.time() + 30
        while True:  # `nice` lowers its own priority, then becomes Python (same pid)
            args = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            if b"consolidate" in args and not args[0].endswith(b"nice"):
                break
            assert time.time() < deadline and proc.poll() is None, f"the child never started Python: {args}"
            time.sleep(0.01)
        assert args[args.index(b"consolidate"):][:3] == [b"consolidate", b"--json", b"--quiet"]
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        niceness = int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of proc(5)
        assert niceness == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == niceness
    finally:
        proc.kill()
        proc.wait()
