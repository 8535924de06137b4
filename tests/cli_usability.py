#!/usr/bin/python3
"""The stave CLI as a user meets it, running the built binary: --version, one-line flag errors,
--timeout deadlines, progress output (redrawn on a terminal, plain lines in a log), loadtest's
built-in prompts against the default model, the README's train-router example run verbatim,
figures written and unwritable outputs refused up front. Needs only the repository (the
embedded default model), no reference data.

usage: cli_usability.py STAVE STAVED SOURCE_DIR BUILD_TYPE
"""
import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

stave, staved, source_dir, build_type = sys.argv[1:5]
failures = []


def run(args, timeout=120, **kw):
    return subprocess.run([stave, *args], capture_output=True, text=True, timeout=timeout, **kw)


def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"FAIL: {what}")


def one_line_error(args, expected, timeout=60):
    """The command fails with exactly one stderr line containing `expected` and prints nothing."""
    r = run(args, timeout=timeout)
    lines = r.stderr.splitlines()
    check(r.returncode != 0, f"{args}: exit {r.returncode}, expected a failure")
    check(len(lines) == 1 and expected in r.stderr,
          f"{args}: expected one line with {expected!r}, got {r.stderr!r}")
    check(r.stdout == "", f"{args}: printed {r.stdout!r} on stdout")
    return r.stderr


def test_version():
    r = run(["--version"])
    check(r.returncode == 0, f"--version: exit {r.returncode}: {r.stderr}")
    check(re.fullmatch(r"stave \d+\.\d+\.\d+ \(" + re.escape(build_type) + r" build\)\n", r.stdout) is not None,
          f"--version printed {r.stdout!r}, expected 'stave X.Y.Z ({build_type} build)'")
    print(f"version: {r.stdout.strip()}")


def test_flag_errors():
    for args, expected in [
        (["generate", "--prompt", "x", "--threads", "-1"], "--threads: must be >= 0, got -1"),
        (["generate", "--prompt", "x", "--max-tokens", "0"], "--max-tokens: must be >= 1, got 0"),
        (["generate", "--server", "127.0.0.1:1", "--prompt", "x", "--max-tokens", "0"], "--max-tokens: must be >= 1, got 0"),
        (["loadtest", "--server", "127.0.0.1:1", "--requests", "1", "--max-tokens", "0"], "--max-tokens: must be >= 1, got 0"),
        (["eval", "kv-retrieval", "--threads", "-1"], "--threads: must be >= 0, got -1"),
        (["eval", "kv-retrieval", "--max-tokens", "0"], "--max-tokens: must be >= 1, got 0"),
        (["bench", "--threads", "-1"], "--threads: must be >= 0, got -1"),
        (["train-router", "--model", "m", "--data", "d", "--expert-bases", "10000", "--top-k", "1",
          "--out", "o", "--threads", "-1"], "--threads: must be >= 0, got -1"),
        (["generate", "--server", "127.0.0.1:1", "--prompt", "x", "--timeout", "0"], "--timeout: must be > 0, got 0"),
        (["generate", "--prompt", "x", "--threads", "two"], "--threads: 'two' is not an integer"),
        (["generate", "--prompt", "x", "--no-such-flag"], "--no-such-flag"),
    ]:
        message = one_line_error(args, expected)
    print(f"flag errors: one line each, e.g. {message.strip()!r}")


def test_timeout():
    # A server that accepts the connection and never answers: every call runs into its deadline.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        for args, timeout in [(["generate", "--server", address, "--prompt", "x", "--timeout", "1"], 1),
                              (["config", "get", "--server", address, "--timeout", "0.5"], 0.5),
                              (["bases", "search", "--server", address, "--count", "2", "--timeout", "0.5"], 0.5)]:
            start = time.monotonic()
            message = one_line_error(args, "DEADLINE_EXCEEDED")
            elapsed = time.monotonic() - start
            check(f"--timeout {timeout:g} s" in message, f"{args}: the message does not name the deadline: {message!r}")
            check(elapsed < timeout + 5, f"{args}: took {elapsed:.1f} s with --timeout {timeout}")
        print(f"timeout: {message.strip()}")
    finally:
        silent.close()
    # The default is documented where users look.
    for command in (["generate"], ["config", "get"], ["loadtest"], ["eval", "kv-retrieval"], ["bases", "search"]):
        help_text = run([*command, "--help"]).stdout
        check(re.search(r"--timeout FLOAT\S*=120\s", help_text) is not None,
              f"{command} --help does not show --timeout with its default 120: {help_text!r}")
    check(re.search(r"--timeout FLOAT\S*=5\s", run(["health", "--help"]).stdout) is not None,
          "health --help does not show --timeout with its default 5")


def eval_args(tmp):
    # Eight greedy answers by the default model in-process: a second or two.
    return ["eval", "kv-retrieval", "--records", "4", "--samples", "2", "--max-tokens", "3",
            "--threads", "1", "--plot", os.path.join(tmp, "eval.png")]


def test_progress_in_a_log(tmp):
    r = run(eval_args(tmp))
    check(r.returncode == 0, f"eval: exit {r.returncode}: {r.stderr}")
    check("\r" not in r.stderr, f"eval with stderr in a file wrote carriage returns: {r.stderr!r}")
    progress = [l for l in r.stderr.splitlines() if l.startswith("eval: ") and "%" in l]
    check(2 <= len(progress) <= 11 and progress[-1].startswith("eval: 100%"),
          f"eval in a log: expected up to 11 progress lines ending at 100 %, got {progress}")
    with open(os.path.join(tmp, "eval.png"), "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "eval --plot did not write a PNG")
    print(f"progress in a log: {len(progress)} lines, last {progress[-1]!r}" if progress else "")


def test_progress_on_a_terminal(tmp):
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([stave, *eval_args(tmp)], stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        slave = None
        output = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=30)
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    check(p.returncode == 0, f"eval on a terminal: exit {p.returncode}: {output!r}")
    check(b"\r[" in output and b"] 8/8 prompts" in output,
          f"eval on a terminal: no bar redrawn with carriage returns: {output!r}")
    print("progress on a terminal: redrawn in place")


def start_default_staved():
    env = {k: v for k, v in os.environ.items() if k != "STAVE_MODEL"}
    server = subprocess.Popen([staved, "--listen=127.0.0.1:0", "--metrics-listen=", "--threads=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = server.stdout.readline()
    if not line.startswith("staved: serving"):
        server.kill()
        raise AssertionError(f"staved (default model) did not start: {line!r}")
    return server, "127.0.0.1:" + line.rsplit(":", 1)[1].strip()


def test_loadtest_default_model(tmp):
    server, address = start_default_staved()
    try:
        def loadtest(*extra):
            r = run(["loadtest", "--server", address, "--requests", "16", "--concurrency", "2",
                     "--temperature", "0", "--max-tokens", "8", "--json", *extra])
            check(r.returncode == 0, f"loadtest {extra}: exit {r.returncode}: {r.stderr}")
            report = json.loads(r.stdout)
            return report["completion_tokens"] / max(1, report["requests_ok"]), r.stderr

        stories = os.path.join(tmp, "stories.txt")
        with open(stories, "w") as f:
            f.write("Once upon a time, there was a little girl named Lily\nTom and his mom went to the store to buy\n")
        per_story, _ = loadtest("--prompts", stories)
        per_builtin, log = loadtest()
        check("built-in key-value retrieval prompts" in log, f"loadtest did not pick retrieval prompts: {log!r}")
        # What the issue saw: story openings get about one token from this model.
        check(per_builtin >= 2 and per_builtin > per_story,
              f"built-in prompts: {per_builtin:.1f} tokens per request, stories {per_story:.1f}")
        # The built-in prompts are ones it answers: the same task, greedy, is right.
        r = run(["generate", "--server", address, "--temperature", "0", "--max-tokens", "4", "--stop", '"',
                 "--no-echo", "--prompt",
                 'Find the value of the query key.\n{"mo": "ka", "re": "du", "si": "po", "la": "ve"}\nQuery: "si": "'])
        check(r.stdout.strip() == "po", f"default model did not answer the retrieval prompt: {r.stdout!r}")
        print(f"loadtest on the default model: {per_builtin:.1f} tokens per request with the built-in "
              f"prompts, {per_story:.1f} with story openings")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_readme_train_router(tmp):
    """The README's example, verbatim, from a directory laid out like the repository root."""
    readme = open(os.path.join(source_dir, "README.md")).read()
    match = re.search(r"<!-- train-router example -->\n```sh\n(.*?)```", readme, re.S)
    check(match is not None, "README.md has no train-router example block")
    if match is None:
        return
    root = os.path.join(tmp, "repo")
    os.makedirs(os.path.join(root, "build"))
    os.symlink(os.path.dirname(stave), os.path.join(root, "build/bin"))
    os.symlink(os.path.join(source_dir, "models"), os.path.join(root, "models"))
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", match.group(1)], cwd=root, capture_output=True,
                       text=True, timeout=800)
    check(r.returncode == 0, f"README train-router example: exit {r.returncode}: {r.stderr[-2000:]}")
    check("\r" not in r.stderr, "train-router wrote carriage returns into a log")
    check(re.search(r"held-out loss: untrained routers [\d.]+, trained [\d.]+", r.stdout) is not None,
          f"README train-router example: no held-out loss line in {r.stdout!r}")
    check(os.path.getsize(os.path.join(root, "router.safetensors")) > 0, "no router.safetensors written")
    print(f"README train-router example: {r.stdout.strip()}")


def test_unwritable_outputs(tmp):
    missing = os.path.join(tmp, "no-such-dir")
    one_line_error(["waveform", "--head-dim", "128", "--bases", "10000,20000", "--max-distance", "100",
                    "--out", f"{missing}/w.png"], f"--out {missing}/w.png: cannot write it (No such file or directory)")
    os.mkdir(os.path.join(tmp, "a-directory.png"))
    one_line_error(["waveform", "--head-dim", "128", "--bases", "10000", "--max-distance", "100",
                    "--out", os.path.join(tmp, "a-directory.png")], "is a directory, not a file")
    # Refused before the evaluation or the training runs (either would take minutes).
    one_line_error(["eval", "kv-retrieval", "--plot", f"{missing}/p.png"], f"--plot {missing}/p.png: cannot write it")
    one_line_error(["eval", "kv-retrieval", "--out", f"{missing}/e.csv"], f"--out {missing}/e.csv: cannot write it")
    one_line_error(["eval", "kv-retrieval", "--plot", os.path.join(tmp, "p.pdf")], "--plot: unknown format '.pdf'")
    one_line_error(["train-router", "--model", os.path.join(source_dir, "models/default"), "--data", "d.jsonl",
                    "--expert-bases", "10000", "--top-k", "1", "--out", f"{missing}/r.safetensors"],
                   f"--out {missing}/r.safetensors: cannot write it")
    for ext in ("png", "svg", "csv"):
        out = os.path.join(tmp, f"waveform.{ext}")
        r = run(["waveform", "--head-dim", "32", "--bases", "10000,17500,18000,19000,20000,25000",
                 "--max-distance", "1024", "--out", out])
        check(r.returncode == 0 and os.path.getsize(out) > 0, f"waveform --out {out}: {r.stderr}")
    print("unwritable outputs: one-line errors before any work")


with tempfile.TemporaryDirectory() as tmp:
    tests = [test_version, test_flag_errors, test_timeout, lambda: test_progress_in_a_log(tmp),
             lambda: test_progress_on_a_terminal(tmp), lambda: test_loadtest_default_model(tmp),
             lambda: test_unwritable_outputs(tmp), lambda: test_readme_train_router(tmp)]
    for test in tests:
        try:
            test()
        except Exception as e:  # a crash in one check should not hide the others' results
            failures.append(f"{test}: {e!r}")
            print(f"FAIL: {e!r}")
if failures:
    sys.exit(f"{len(failures)} failure(s)")
print("ok")
