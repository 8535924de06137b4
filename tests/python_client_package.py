#!/usr/bin/python3
"""The Python client package as a user installs it: `pip install client/python` into a fresh venv
(--system-site-packages for Debian's grpcio and protobuf; --no-index, so nothing is downloaded),
then, with that venv's Python, import stave_client from the install, start staved (stories260K,
an admin token) on a loopback ephemeral port, stream the reference runner's greedy texts and
call score, tokenize, get_model_info, get_config and update_config.

usage: python_client_package.py STAVED SOURCE_DIR SHARED_DIR   ($STAVE_SHARED_DIR wins; exit 77 = skipped)
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

from stave_proto_runtime import stories_model  # first: it skips without grpcio

staved, source_dir, shared_arg = sys.argv[1:4]
shared, model = stories_model(shared_arg)


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


def install(tmp):
    """The venv's python, with stave_client installed from a copy of the sources (pip's in-tree
    build writes build/ and *.egg-info next to setup.py; the source tree stays clean)."""
    try:
        import ensurepip  # noqa: F401  Debian splits it (and so venv's pip) into python3-venv
    except ImportError:
        skip("python3 -m venv cannot install pip (apt-get install python3-venv)")
    try:  # pip builds with these when it may not download them (--no-build-isolation)
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError as e:
        skip(f"{e.name} missing (apt-get install python3-setuptools python3-wheel)")
    for tool in ("protoc", "grpc_python_plugin"):
        if shutil.which(tool) is None:
            skip(f"{tool} not found (apt-get install protobuf-compiler protobuf-compiler-grpc)")
    shutil.copytree(os.path.join(source_dir, "client/python"), os.path.join(tmp, "src/client/python"),
                    ignore=shutil.ignore_patterns("build", "*.egg-info"))
    shutil.copytree(os.path.join(source_dir, "proto"), os.path.join(tmp, "src/proto"))
    venv = os.path.join(tmp, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    python = os.path.join(venv, "bin/python")
    # The command the README gives, plus --no-index: the test fails if pip wanted the network.
    subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation",
                    "--disable-pip-version-check", "--quiet", os.path.join(tmp, "src/client/python")],
                   check=True)
    return python


def start_staved(token_file):
    server = subprocess.Popen(
        [staved, f"--model={model}", f"--tokenizer={os.path.join(shared, 'models/stories260K/tok512.bin')}",
         "--listen=127.0.0.1:0", "--metrics-listen=", f"--admin-token-file={token_file}"],
        stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if not line.startswith("staved: serving"):
        server.kill()
        raise AssertionError(f"staved did not start: {line!r}")
    return server, "127.0.0.1:" + line.rsplit(":", 1)[1].strip()


def check(address, token):
    """Runs inside the venv: everything through the installed package."""
    import grpc
    import stave_client
    from stave_client import Client, PositionConfig, StaveError

    assert os.path.dirname(stave_client.__file__).startswith(sys.prefix), \
        f"stave_client imported from {stave_client.__file__}, not from the venv {sys.prefix}"
    golden = os.path.join(shared, "golden/stories260K/greedy.jsonl")
    with Client(address, admin_token=token) as client:
        # Two reference runs: one to the length limit, one that stopped on BOS.
        for reference in [row for row in map(json.loads, open(golden)) if row["prompt"]][1:3]:
            prompt = reference["prompt"]
            prompt_ids = client.tokenize(prompt, add_bos=True).token_ids
            assert prompt_ids == reference["tokens"][:len(prompt_ids)], (prompt_ids, reference["tokens"][:20])
            expected = reference["tokens"][len(prompt_ids):]
            if reference["stopped_on_bos"]:  # the runner's stop token (BOS) is not streamed
                assert expected[-1] == 1, expected[-3:]
                expected = expected[:-1]
            stream = client.generate(prompt, max_tokens=reference["steps"] + 1 - len(prompt_ids),
                                     temperature=0)
            streamed = list(stream)
            tokens = [t.id for t in streamed if t.id is not None]
            assert tokens == expected, f"{prompt!r}: {tokens[:20]}... != reference {expected[:20]}..."
            assert prompt + stream.text == reference["text"], (stream.text, reference["text"])
            want = "eos" if reference["stopped_on_bos"] else "length"
            assert stream.finish_reason == want, (stream.finish_reason, want)
            assert stream.completion_tokens == len(tokens) and stream.prompt_tokens == len(prompt_ids)
            assert stream.config_version == 1, stream.config_version
            print(f"generate: {len(tokens)} tokens = the reference's, finish {stream.finish_reason}: "
                  f"{prompt + stream.text[:60]!r}...")

            # The greedy continuation (its first 30 tokens: cut inside a word, it would tokenise
            # differently) scores as greedy, its log-probabilities summing to the total.
            score = client.score(prompt, "".join(t.text for t in streamed[:30]))
            assert score.is_greedy and score.token_ids, score
            assert all(lp <= 0 for lp in score.logprobs)
            assert math.isclose(sum(score.logprobs), score.total_logprob, rel_tol=1e-9, abs_tol=1e-9)
            assert score.token_ids == expected[:len(score.token_ids)], (score.token_ids, expected[:10])
        print(f"score: {len(score.token_ids)} tokens, total log-prob {score.total_logprob:.3f}, greedy")

        pieces = client.tokenize("Once upon a time")
        # llama2.c's tokenizer adds a space before the text (SentencePiece's dummy prefix).
        assert "".join(pieces.pieces) == " Once upon a time", pieces
        assert len(pieces.token_ids) == len(pieces.pieces) == 4, pieces
        print(f"tokenize: {pieces.token_ids} {pieces.pieces}")

        info = client.get_model_info()
        assert (info.path, info.format, info.dim, info.vocab_size) == ("stories260K.bin", "llama2c", 64, 512), info

        config = client.get_config()
        assert (config.version, config.mode) == (1, "vanilla"), config
        # Writes need the admin token: without it the server refuses and nothing changes.
        try:
            Client(address, admin_token="wrong").update_config(mode="buckets", bases=[10000, 20000])
            raise AssertionError("update_config with a wrong token was accepted")
        except StaveError as e:
            assert e.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), e
            print(f"update_config with a wrong token: {e}")
        assert client.get_config().version == 1
        updated = client.update_config(mode="buckets", bases=[10000, 20000], expected_version=1)
        assert (updated.version, updated.mode, updated.bases) == (2, "buckets", [10000, 20000]), updated
        assert client.get_config() == updated
        try:
            client.update_config(mode="vanilla", expected_version=1)
            raise AssertionError("a stale expected_version was accepted")
        except StaveError as e:
            assert e.code == grpc.StatusCode.FAILED_PRECONDITION, e
        print(f"update_config: version {updated.version}, {updated.mode} {updated.bases}")

        # A request's own position config: vanilla with the model's base is the reference again.
        own = client.generate(prompt, max_tokens=10, temperature=0,
                              position=PositionConfig(mode="buckets", bases=[10000]))
        assert [t.id for t in own if t.id is not None] == expected[:10] and own.config_version == 0

        # A deadline too short for the stream is one clear error.
        try:
            for _ in client.generate(prompt, max_tokens=200, temperature=0, timeout=0.001):
                pass
            raise AssertionError("a 1 ms deadline did not expire")
        except StaveError as e:
            assert e.code == grpc.StatusCode.DEADLINE_EXCEEDED and "0.001 s deadline" in str(e), e
            print(f"deadline: {e}")


if __name__ == "__main__" and len(sys.argv) > 4 and sys.argv[4] == "--inside-venv":
    check(sys.argv[5], sys.argv[6])
    sys.exit(0)

with tempfile.TemporaryDirectory() as tmp:
    python = install(tmp)
    token = "python-client-test-token"
    token_file = os.path.join(tmp, "admin-token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    server, address = start_staved(token_file)
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        # stave_proto_runtime must not shadow anything: the venv's Python finds stave_client only
        # in its site-packages (asserted inside).
        result = subprocess.run([python, os.path.join(here, "python_client_package.py"), *sys.argv[1:4],
                                 "--inside-venv", address, token], cwd=tmp)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if result.returncode != 0:
        sys.exit(f"the installed package failed (exit {result.returncode})")
print("ok")
