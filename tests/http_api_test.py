#!/usr/bin/python3
"""The OpenAI-compatible HTTP API of staved, driven by Python's http.client (a client that is not
ours) against staved processes on loopback ephemeral ports: completions whole and streamed (parsed
event by event) equal to gRPC Generate, logprobs against gRPC Score, the same validation messages
as gRPC, OpenAI error objects, the stave position extension, chat with a ChatML template and a
clear 400 without one, /health and /v1/models, request ids (X-Request-Id), the metrics and a
--log-json line of a finished request, a client that leaves mid-stream or before a whole answer
(its sequence is cancelled and freed), a taken HTTP port (exit 1) and staved --version.

usage: http_api_test.py STAVED STAVE DESCRIPTOR_SET SHARED_DIR SOURCE_DIR   (exit 77 = skipped)
"""
import http.client
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from stave_proto_runtime import message_classes, stories_model  # first: it skips without grpcio

import grpc

staved, stave, descriptors, shared_arg, source_dir = sys.argv[1:6]
shared, model = stories_model(shared_arg)
tokenizer = os.path.join(shared, "models/stories260K/tok512.bin")
M = message_classes(descriptors, ["GenerateRequest", "GenerateResponse", "ScoreRequest", "ScoreResponse",
                                  "PositionConfig"])

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
PROMPT = "Once upon a time, there was a little"
failures = []


def seconds_until_idle(server, limit=10):
    """Seconds until `server` has no active sequence (gives up after `limit`)."""
    start = time.monotonic()
    while server.metric("stave_active_sequences") != 0 and time.monotonic() - start < limit:
        time.sleep(0.05)
    return time.monotonic() - start


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


class Staved:
    """staved on loopback ephemeral ports; reads the ports it prints."""

    def __init__(self, args, stderr=None):
        self.proc = subprocess.Popen([staved, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                      "--http-listen=127.0.0.1:0"] + args,
                                     stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.http_port = self.metrics_port = None
        self.template = None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"staved {args} did not start")
            if line.startswith("staved: metrics on"):
                self.metrics_port = int(re.search(r":(\d+)/metrics", line).group(1))
            if line.startswith("staved: HTTP API on"):
                m = re.search(r":(\d+)/v1 \(chat template: ([\w-]+)\)", line)
                self.http_port, self.template = int(m.group(1)), m.group(2)
            if line.startswith("staved: serving"):
                self.grpc_address = "127.0.0.1:" + line.rsplit(":", 1)[1].strip()
                break

    def request(self, method, path, body=None, raw=None):
        """(status, parsed JSON or text) of one request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=120)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    def request_id(self, method, path, body=None, request_id=None, stream=False):
        """(status, the X-Request-Id staved answered with) of one request, sent with that id."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=120)
        headers = {"Content-Type": "application/json"}
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        data = json.dumps(dict(body, stream=True) if stream else body) if body is not None else None
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status, resp.getheader("X-Request-Id")

    def stream(self, path, body, on_event=None):
        """Events of a streamed answer, parsed one by one: (list of JSON objects, saw [DONE] last)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=120)
        conn.request("POST", path, body=json.dumps(dict(body, stream=True)), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, (resp.status, resp.read())
        assert resp.getheader("Content-Type").startswith("text/event-stream"), resp.getheader("Content-Type")
        events, done = [], False
        while True:
            line = resp.readline().decode()
            if not line:
                break
            line = line.rstrip("\n")
            if not line or line.startswith(":"):
                continue  # event separator, keep-alive comment
            assert line.startswith("data: "), line
            assert not done, "an event after [DONE]"
            payload = line[len("data: "):]
            if payload == "[DONE]":
                done = True
                continue
            events.append(json.loads(payload))
            if on_event:
                on_event(events[-1])
        conn.close()
        return events, done

    def metric(self, series):
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    def generate(self, request):
        """gRPC Generate: (text, tokens, finish_reason) or the RpcError."""
        with grpc.insecure_channel(self.grpc_address) as channel:
            call = channel.unary_stream("/stave.v1.Inference/Generate",
                                        request_serializer=M["GenerateRequest"].SerializeToString,
                                        response_deserializer=M["GenerateResponse"].FromString)
            text, tokens, finish = "", 0, None
            try:
                for msg in call(request, timeout=60):
                    text += msg.text
                    tokens += msg.HasField("token_id")
                    finish = msg.finish_reason or finish
            except grpc.RpcError as e:
                return e
            return text, tokens, finish

    def score(self, prompt, continuation):
        with grpc.insecure_channel(self.grpc_address) as channel:
            call = channel.unary_unary("/stave.v1.Inference/Score",
                                       request_serializer=M["ScoreRequest"].SerializeToString,
                                       response_deserializer=M["ScoreResponse"].FromString)
            return call(M["ScoreRequest"](prompt=prompt, continuation=continuation), timeout=60)

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=60)


def is_error(status, body, http_status, message_part=None):
    """An OpenAI error object with that status (and message)."""
    ok = (status == http_status and isinstance(body, dict) and set(body) == {"error"}
          and set(body["error"]) == {"message", "type", "param", "code"})
    return ok and (message_part is None or message_part in body["error"]["message"])


def grpc_message(server, **fields):
    position = fields.pop("position", None)
    request = M["GenerateRequest"](**fields)
    if position:
        request.position.CopyFrom(position)
    e = server.generate(request)
    assert isinstance(e, grpc.RpcError), f"gRPC accepted {fields}"
    return e.details()


# --version: version and build type, exit 0.
out = subprocess.run([staved, "--version"], capture_output=True, text=True, timeout=60)
check(out.returncode == 0 and re.fullmatch(r"staved \d+\.\d+\.\d+ \(\w+ build\)\n", out.stdout) is not None,
      f"staved --version prints the version and build type: {out.stdout!r}")

tmp = tempfile.mkdtemp(prefix="stave_http_test_")
servers = []
try:
    # A model directory with stories260K and a tokenizer_config.json carrying a ChatML template.
    chat_dir = os.path.join(tmp, "chatml")
    os.makedirs(chat_dir)
    for f in (model, tokenizer):
        os.symlink(f, os.path.join(chat_dir, os.path.basename(f)))
    with open(os.path.join(chat_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": CHATML, "bos_token": "<s>", "eos_token": "</s>"}, f)
    s = Staved([f"--model={os.path.join(chat_dir, 'stories260K.bin')}",
                f"--tokenizer={os.path.join(chat_dir, 'tok512.bin')}"])
    servers.append(s)
    check(s.template == "chatml", f"the ChatML template of tokenizer_config.json is recognised ({s.template})")

    # /health, /v1/models.
    status, body = s.request("GET", "/health")
    check(status == 200 and body == {"status": "ok"}, f"GET /health -> 200 ok ({status} {body})")
    status, body = s.request("GET", "/v1/models")
    check(status == 200 and body["object"] == "list" and [m["id"] for m in body["data"]] == ["stories260K.bin"],
          f"GET /v1/models lists the model ({body})")

    # A whole greedy completion equals gRPC Generate's.
    greedy = {"prompt": PROMPT, "max_tokens": 60, "temperature": 0}
    status, whole = s.request("POST", "/v1/completions", greedy)
    text, tokens, finish = s.generate(M["GenerateRequest"](prompt=PROMPT, max_tokens=60, temperature=0))
    choice = whole["choices"][0] if status == 200 else {}
    check(status == 200 and whole["object"] == "text_completion" and choice.get("text") == text and len(text) > 0,
          f"/v1/completions text equals gRPC Generate's ({choice.get('text')!r} vs {text!r})")
    check(choice.get("finish_reason") == ("length" if finish == "length" else "stop"),
          f"finish_reason {choice.get('finish_reason')} for gRPC's {finish}")
    check(whole.get("usage", {}).get("completion_tokens") == tokens and whole["usage"]["prompt_tokens"] > 0
          and whole["usage"]["total_tokens"] == whole["usage"]["prompt_tokens"] + tokens,
          f"usage counts the tokens ({whole.get('usage')}, gRPC {tokens})")
    check(whole.get("stave", {}).get("config_version") == 1, "the answer names the config version used")

    # Streamed: parsed event by event, ends with [DONE]; the pieces make the whole text.
    events, done = s.stream("/v1/completions", greedy)
    pieces = [e["choices"][0]["text"] for e in events]
    finishes = [e["choices"][0]["finish_reason"] for e in events]
    check(done and len(events) > 1 and "".join(pieces) == choice.get("text"),
          f"streamed {len(events)} events ending with [DONE], joined text equals the whole answer")
    check(finishes[-1] == choice.get("finish_reason") and all(f is None for f in finishes[:-1])
          and all(e["object"] == "text_completion" and e["id"] == events[0]["id"] for e in events),
          "only the last event has a finish_reason; every event has the same id")
    events, done = s.stream("/v1/completions", dict(greedy, stream_options={"include_usage": True}))
    check(done and events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == tokens,
          "stream_options.include_usage adds a last chunk with usage")

    # Defaults agree: a request naming only prompt and seed samples the same text through HTTP,
    # gRPC and `stave generate` in-process (max_tokens 256 within the context, temperature 1.0,
    # top_p 0.9 everywhere).
    status, http_default = s.request("POST", "/v1/completions", {"prompt": PROMPT, "seed": 7})
    grpc_default = s.generate(M["GenerateRequest"](prompt=PROMPT, seed=7))
    cli = subprocess.run([stave, "generate", f"--model={model}", f"--tokenizer={tokenizer}", "--prompt", PROMPT,
                          "--seed", "7", "--json", "--no-echo"], capture_output=True, text=True, timeout=120)
    cli_text = json.loads(cli.stdout)["text"] if cli.returncode == 0 else cli.stderr
    check(status == 200 and http_default["choices"][0]["text"] == grpc_default[0] == cli_text
          and http_default["usage"]["completion_tokens"] == grpc_default[1] > 30,
          f"defaults agree: HTTP, gRPC and the CLI sample the same {grpc_default[1]} tokens for prompt + seed")
    status, body = s.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 0})
    check(is_error(status, body, 400) and body["error"]["message"] == grpc_message(s, prompt="Once", max_tokens=0),
          "max_tokens 0 -> 400 with gRPC's message")

    # n and seeds: a seeded sampled request repeats; n choices, each its own seed.
    sampled = {"prompt": PROMPT, "max_tokens": 30, "temperature": 1.0, "seed": 42, "n": 3}
    _, a = s.request("POST", "/v1/completions", sampled)
    _, b = s.request("POST", "/v1/completions", sampled)
    texts = [c["text"] for c in a["choices"]]
    check([c["index"] for c in a["choices"]] == [0, 1, 2] and texts == [c["text"] for c in b["choices"]]
          and len(set(texts)) > 1, f"n=3 seeded: three reproducible choices, not all alike ({texts})")
    events, done = s.stream("/v1/completions", sampled)
    streamed = ["".join(e["choices"][0]["text"] for e in events if e["choices"][0]["index"] == i) for i in range(3)]
    check(done and streamed == texts, "n=3 streamed: each choice's events join to its text")

    # logprobs of the chosen tokens: those gRPC Score gives the same continuation.
    status, lp = s.request("POST", "/v1/completions", dict(greedy, logprobs=0))
    logprobs = lp["choices"][0]["logprobs"] if status == 200 else None
    scored = s.score(PROMPT, text)
    check(logprobs is not None and "".join(logprobs["tokens"]) == text
          and len(logprobs["token_logprobs"]) == len(scored.logprobs) == tokens
          and all(abs(a - b) < 1e-3 for a, b in zip(logprobs["token_logprobs"], scored.logprobs)),
          f"logprobs: tokens join to the text, log-probabilities equal gRPC Score's "
          f"({logprobs and logprobs['token_logprobs'][:3]} vs {list(scored.logprobs)[:3]})")
    status, body = s.request("POST", "/v1/completions", dict(greedy, logprobs=5))
    check(is_error(status, body, 400, "logprobs") and body["error"]["param"] == "logprobs",
          "logprobs 5 (top alternatives) -> 400 naming logprobs")

    # Bad requests: OpenAI error objects, with the gRPC API's own message for the same mistake.
    status, body = s.request("POST", "/v1/completions", raw='{"prompt": "x", ')
    check(is_error(status, body, 400, "not valid JSON") and body["error"]["type"] == "invalid_request_error",
          f"bad JSON -> 400 invalid_request_error ({status} {body})")
    status, body = s.request("POST", "/v1/completions", raw='{"prompt": "x", "temperature": NaN}')
    check(is_error(status, body, 400, "not valid JSON"), "temperature NaN (not JSON) -> 400")
    status, body = s.request("POST", "/v1/completions", raw='{"prompt": "x", "temperature": 1e999}')
    check(is_error(status, body, 400, "number overflow"), f"temperature 1e999 (beyond a double) -> 400 ({body})")
    status, body = s.request("POST", "/v1/completions", raw='{"prompt": "x", "temperature": 1e300}')
    check(is_error(status, body, 400, "temperature must be a finite number >= 0, got inf"),
          f"temperature 1e300 (beyond a float) -> 400 ({body})")
    cases = [
        ({"temperature": -1}, {"temperature": -1}, "temperature"),
        ({"stop": [str(i) for i in range(17)]}, {"stop": [str(i) for i in range(17)]}, "stop"),
        ({"stop": ["x" * 300]}, {"stop": ["x" * 300]}, "stop"),
        ({"prompt": "a" * ((1 << 20) + 1)}, {"prompt": "a" * ((1 << 20) + 1)}, "prompt"),
        ({"max_tokens": 100000}, {"max_tokens": 100000}, "max_tokens"),
        ({"stave": {"mode": "buckets", "bases": [-3]}}, {"position": {"mode": 2, "bases": [-3]}}, None),
        ({"stave": {"mode": "moice", "router_path": "/etc/passwd"}},
         {"position": {"mode": 3, "router_path": "/etc/passwd"}}, None),
    ]
    for http_fields, grpc_fields, param in cases:
        body_fields = dict({"prompt": "Once", "max_tokens": 10, "temperature": 0}, **http_fields)
        status, body = s.request("POST", "/v1/completions", body_fields)
        g = dict({"prompt": "Once", "max_tokens": 10, "temperature": 0}, **grpc_fields)
        if "position" in g:
            g["position"] = M["GenerateRequest"]().position.__class__(**g["position"])
        expected = grpc_message(s, **g)
        short = {k: (v if len(str(v)) < 60 else "...") for k, v in http_fields.items()}
        check(is_error(status, body, 400) and body["error"]["message"] == expected
              and (param is None or body["error"]["param"] == param),
              f"{short} -> 400 with gRPC's message {expected!r}")
    status, body = s.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": "ten"})
    check(is_error(status, body, 400, "max_tokens: expected an integer"), "max_tokens of the wrong type -> 400")
    status, body = s.request("POST", "/v1/completions", {"prompt": "Once", "model": "gpt-4"})
    check(is_error(status, body, 404, "gpt-4") and body["error"]["code"] == "model_not_found",
          "a model staved does not serve -> 404 model_not_found")
    status, body = s.request("POST", "/v1/completions", raw=json.dumps({"prompt": "a" * (5 << 20)}))
    check(status == 413 and is_error(400, body, 400, "over the server's limit"),
          f"a body over --http-max-body-mb -> 413 with an error object ({status})")
    status, body = s.request("GET", "/v1/nothing")
    check(is_error(status, body, 404, "no route GET /v1/nothing"), f"unknown route -> 404 error object ({status})")
    status, body = s.request("GET", "/v1/completions")
    check(status == 404 and is_error(status, body, 404), "GET on a POST route -> 404 error object")

    # The stave extension: one bucket of the model's own base gives the vanilla text; version 0.
    status, body = s.request("POST", "/v1/completions",
                             dict(greedy, stave={"mode": "buckets", "bases": [10000, 10000], "fusion": "logits"}))
    check(status == 200 and body["choices"][0]["text"] == text and body["stave"]["config_version"] == 0,
          f"stave extension buckets [10000, 10000]: the vanilla text, config version 0 ({status})")
    status, body = s.request("POST", "/v1/completions",
                             dict(greedy, stave={"mode": "buckets", "bases": [10000, 20000, 40000]}))
    check(status == 200 and body["choices"][0]["text"] != "" and body["stave"]["config_version"] == 0,
          "stave extension buckets [10000, 20000, 40000] serves")
    status, body = s.request("POST", "/v1/completions", dict(greedy, stave={"mode": "buckets", "colour": "red"}))
    check(is_error(status, body, 400, "stave.colour: unknown field"), "an unknown stave field -> 400")

    # Chat with the ChatML template: the answer is the completion of the rendered prompt.
    messages = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me a story."}]
    rendered = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"
    status, chat = s.request("POST", "/v1/chat/completions", {"messages": messages, "max_tokens": 40, "temperature": 0})
    _, plain = s.request("POST", "/v1/completions",
                         {"prompt": rendered, "max_tokens": 40, "temperature": 0, "stop": ["<|im_end|>"]})
    check(status == 200 and chat["object"] == "chat.completion"
          and chat["choices"][0]["message"] == {"role": "assistant", "content": plain["choices"][0]["text"]}
          and chat["usage"] == plain["usage"],
          f"chat (ChatML) answers as the completion of the rendered prompt ({status})")
    events, done = s.stream("/v1/chat/completions", {"messages": messages, "max_tokens": 40, "temperature": 0})
    check(done and events[0]["choices"][0]["delta"].get("role") == "assistant"
          and all(e["object"] == "chat.completion.chunk" for e in events)
          and "".join(e["choices"][0]["delta"].get("content", "") for e in events) == chat["choices"][0]["message"]["content"],
          "streamed chat: role first, deltas join to the whole answer, [DONE] last")
    status, lp_chat = s.request("POST", "/v1/chat/completions",
                                {"messages": messages, "max_tokens": 40, "temperature": 0, "logprobs": True})
    content = lp_chat["choices"][0]["logprobs"]["content"] if status == 200 else []
    check(len(content) == chat["usage"]["completion_tokens"] > 0
          and b"".join(bytes(t["bytes"]) for t in content).decode("utf-8", "replace").startswith(
              chat["choices"][0]["message"]["content"])
          and all(t["logprob"] <= 0 and t["top_logprobs"] == [] for t in content),
          "chat logprobs: one entry per token, their bytes spell the answer")
    status, body = s.request("POST", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "hi"}]})
    check(is_error(status, body, 400, "messages[0].role"), "an unknown chat role -> 400")

    # A taken HTTP port: a clear error, exit 1.
    out = subprocess.run([staved, f"--model={model}", f"--tokenizer={tokenizer}", "--listen=127.0.0.1:0",
                          "--metrics-listen=", f"--http-listen=127.0.0.1:{s.http_port}"],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 1 and f"--http-listen 127.0.0.1:{s.http_port}: cannot listen there" in out.stderr,
          f"a taken --http-listen port -> exit 1 with a clear message ({out.returncode}: {out.stderr.strip()[-120:]})")

    # The metrics count HTTP requests, by route and outcome.
    check(s.metric('stave_requests_total{code="OK",method="/v1/completions",transport="http"}') >= 5
          and s.metric('stave_requests_total{code="INVALID_ARGUMENT",method="/v1/completions",transport="http"}') >= 9,
          "stave_requests_total counts HTTP completions by outcome (transport=\"http\")")

    # Request ids: the client's X-Request-Id comes back when short and printable, else a new one;
    # every answer has one, errors and streams included.
    generated = re.compile(r"[0-9a-f]{16}")
    small = {"prompt": "Once", "max_tokens": 5, "temperature": 0}
    status, rid = s.request_id("POST", "/v1/completions", small, request_id="client-42.a_b")
    check(status == 200 and rid == "client-42.a_b", f"X-Request-Id echoed on a completion ({status} {rid})")
    status, rid = s.request_id("POST", "/v1/completions", small, request_id="stream-1", stream=True)
    check(status == 200 and rid == "stream-1", f"X-Request-Id echoed on a streamed completion ({rid})")
    status, rid = s.request_id("GET", "/health")
    check(status == 200 and rid is not None and generated.fullmatch(rid), f"no X-Request-Id: one is made ({rid})")
    _, other = s.request_id("GET", "/health")
    check(other != rid and generated.fullmatch(other or ""), "... a different one per request")
    for bad in ("a" * 65, "two words", "semi;colon"):
        status, rid = s.request_id("GET", "/v1/models", request_id=bad)
        check(rid is not None and rid != bad and generated.fullmatch(rid), f"X-Request-Id {bad[:10]!r}... replaced ({rid})")
    status, rid = s.request_id("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 0}, request_id="bad-req")
    check(status == 400 and rid == "bad-req", f"a refused completion carries its X-Request-Id ({status} {rid})")
    status, rid = s.request_id("GET", "/v1/nowhere", request_id="lost-1")
    check(status == 404 and rid == "lost-1", f"an unknown route carries its X-Request-Id ({status} {rid})")

    # The new series, named by Prometheus' conventions.
    check(s.metric('stave_generations_total{finish_reason="length",transport="http"}') >= 5
          and s.metric('stave_request_duration_seconds_count{method="/v1/completions",transport="http"}') >= 5
          and s.metric("stave_prompt_tokens_count") >= 5
          and s.metric('stave_request_duration_seconds_count{method="/health",transport="http"}') >= 3,
          "stave_generations_total, stave_request_duration_seconds and stave_prompt_tokens count HTTP requests")

    # --log-json: one line per finished request, its fields as top-level keys.
    log_path = os.path.join(tmp, "staved-json.log")
    with open(log_path, "w") as log_file:
        j = Staved([f"--model={model}", f"--tokenizer={tokenizer}", "--log-json"], stderr=log_file)
        servers.append(j)
        conn = http.client.HTTPConnection("127.0.0.1", j.http_port, timeout=120)
        conn.request("POST", "/v1/completions", body=json.dumps({"prompt": PROMPT, "max_tokens": 9, "temperature": 0}),
                     headers={"Content-Type": "application/json", "X-Request-Id": "http-log-1"})
        answer = json.loads(conn.getresponse().read().decode())
        conn.close()
        check(j.stop() == 0, "the --log-json staved stops")
    with open(log_path) as f:
        lines = [json.loads(line) for line in f if line.strip()]  # every line parses as JSON
    line = next((l for l in lines if l.get("request_id") == "http-log-1"), {})
    expected = {"message": "request finished", "level": "info", "method": "/v1/completions", "transport": "http",
                "code": "OK", "http_status": 200, "prompt_tokens": answer["usage"]["prompt_tokens"],
                "generated_tokens": 9, "finish_reason": "length", "config_version": 1}
    check(all(line.get(k) == v for k, v in expected.items()) and line.get("peer", "").startswith("127.0.0.1:")
          and 0 <= line.get("queue_seconds", -1) <= line.get("ttft_seconds", -1) <= line.get("duration_seconds", -1),
          f"--log-json: the finished request's line has its fields ({line})")

    # The embedded default model has no chat template: a clear 400.
    d = Staved([])
    servers.append(d)
    status, body = d.request("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    check(d.template == "none" and is_error(status, body, 400, "no chat template"),
          f"chat on the default model (no template) -> 400 ({status} {body})")

    # A client that leaves mid-stream: its sequence leaves the engine at once. A random-weight model
    # slow enough that the stream would otherwise run for many seconds.
    slow_dir = os.path.join(tmp, "slow")
    subprocess.run([stave, "convert", "--random-shape",
                    "dim=512,layers=4,heads=8,kv_heads=8,hidden=1536,vocab=408,ctx=1024",
                    "--tokenizer", os.path.join(source_dir, "models/default/tokenizer.model"), "--out", slow_dir],
                   check=True, capture_output=True, timeout=300)
    slow = Staved([f"--model={slow_dir}", "--http-threads=2"])  # one completion at a time
    servers.append(slow)
    # Both APIs feed the one engine: a gRPC stream and an HTTP stream are batched together.
    with grpc.insecure_channel(slow.grpc_address) as channel:
        generate = channel.unary_stream("/stave.v1.Inference/Generate",
                                        request_serializer=M["GenerateRequest"].SerializeToString,
                                        response_deserializer=M["GenerateResponse"].FromString)
        grpc_stream = generate(M["GenerateRequest"](prompt="Once upon a time", max_tokens=600, temperature=0,
                                                    position=M["PositionConfig"](mode=2, bases=[10000] * 16)),
                               timeout=120)
        next(grpc_stream)
        conn = http.client.HTTPConnection("127.0.0.1", slow.http_port, timeout=120)
        conn.request("POST", "/v1/completions", body=json.dumps({
            "prompt": "Once upon a time", "max_tokens": 600, "temperature": 0, "stream": True,
            "stave": {"mode": "buckets", "bases": [10000] * 16}}), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        while not resp.readline().decode().startswith("data: {"):
            pass
        both = False
        waited = time.monotonic()
        while not both and time.monotonic() - waited < 5:
            both = slow.metric("stave_active_sequences") == 2
            time.sleep(0.02)
        grpc_stream.cancel()
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
    check(both, "a gRPC stream and an HTTP stream run in the engine together (stave_active_sequences 2)")
    waited = time.monotonic()
    while slow.metric("stave_active_sequences") != 0 and time.monotonic() - waited < 10:
        time.sleep(0.05)
    cancelled_before = slow.metric('stave_requests_total{code="CANCELLED",method="/v1/completions",transport="http"}')

    conn = http.client.HTTPConnection("127.0.0.1", slow.http_port, timeout=120)
    conn.request("POST", "/v1/completions", body=json.dumps({
        "prompt": "Once upon a time", "max_tokens": 1000, "temperature": 0, "stream": True,
        "stave": {"mode": "buckets", "bases": [10000] * 16}}), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    got = 0
    while got < 3:
        line = resp.readline().decode()
        got += line.startswith("data: {")
    active_before = slow.metric("stave_active_sequences")
    tokens_at_close = slow.metric("stave_generated_tokens_total")
    tokens_before = tokens_at_close - 3  # this request's first three tokens
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    took = seconds_until_idle(slow)
    tokens_after = slow.metric("stave_generated_tokens_total")
    time.sleep(0.5)
    check(active_before == 1 and slow.metric("stave_active_sequences") == 0 and took < 5,
          f"client gone mid-stream: active sequences {active_before:.0f} -> 0 in {took:.2f} s")
    check(tokens_after - tokens_before < 100 and slow.metric("stave_generated_tokens_total") == tokens_after,
          f"... and no more tokens are generated ({tokens_after - tokens_before:.0f} of 1000 asked for)")
    check(slow.metric('stave_requests_total{code="CANCELLED",method="/v1/completions",transport="http"}')
          == cancelled_before + 1, "... counted as a cancelled HTTP request")
    start = time.monotonic()
    status, body = slow.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 5, "temperature": 0})
    check(status == 200 and time.monotonic() - start < 10, "the next request is served promptly")

    # A client that leaves before a whole (non-streamed) answer: nothing is written until the end,
    # so staved watches the socket; the sequence leaves the engine and the slot is free again.
    cancelled_before = slow.metric('stave_requests_total{code="CANCELLED",method="/v1/completions",transport="http"}')
    gen_cancelled_before = slow.metric('stave_generations_total{finish_reason="cancelled",transport="http"}')
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 1000, "temperature": 0,
                       "stave": {"mode": "buckets", "bases": [10000] * 16}}).encode()
    tokens_base = slow.metric("stave_generated_tokens_total")
    sock = socket.create_connection(("127.0.0.1", slow.http_port), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    waited = time.monotonic()
    while ((slow.metric("stave_generated_tokens_total") < tokens_base + 3 or slow.metric("stave_active_sequences") != 1)
           and time.monotonic() - waited < 30):
        time.sleep(0.02)
    active_before = slow.metric("stave_active_sequences")
    sock.close()
    took = seconds_until_idle(slow)
    tokens_stopped = slow.metric("stave_generated_tokens_total")
    time.sleep(0.5)
    check(active_before == 1 and slow.metric("stave_active_sequences") == 0 and took < 5,
          f"client gone before a whole answer: active sequences {active_before:.0f} -> 0 in {took:.2f} s")
    check(tokens_stopped - tokens_base < 200 and slow.metric("stave_generated_tokens_total") == tokens_stopped,
          f"... and no more tokens are generated ({tokens_stopped - tokens_base:.0f} of 1000 asked for)")
    left = time.monotonic()
    while (slow.metric('stave_requests_total{code="CANCELLED",method="/v1/completions",transport="http"}')
           != cancelled_before + 1 and time.monotonic() - left < 5):
        time.sleep(0.05)
    check(slow.metric('stave_requests_total{code="CANCELLED",method="/v1/completions",transport="http"}')
          == cancelled_before + 1
          and slow.metric('stave_generations_total{finish_reason="cancelled",transport="http"}')
          == gen_cancelled_before + 1, "... counted as a cancelled HTTP request and a cancelled generation")
    start = time.monotonic()
    status, body = slow.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 5, "temperature": 0})
    check(status == 200 and time.monotonic() - start < 10, "... and its HTTP slot is free for the next request")

    # Draining: SIGTERM turns /health to 503 while a stream runs, and staved exits 0.
    conn = http.client.HTTPConnection("127.0.0.1", slow.http_port, timeout=120)
    conn.request("POST", "/v1/completions", body=json.dumps({
        "prompt": "Once upon a time", "max_tokens": 200, "temperature": 0, "stream": True,
        "stave": {"mode": "buckets", "bases": [10000] * 16}}), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.readline()
    status, body = slow.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 5})
    check(is_error(status, body, 429, "--http-threads 2"),
          f"--http-threads 2: a second completion while one streams -> 429 ({status})")
    slow.proc.terminate()
    time.sleep(0.3)
    status, body = slow.request("GET", "/health")
    rest = resp.read().decode()
    check(status == 503 and body == {"status": "draining"}, f"draining: /health -> 503 ({status} {body})")
    check(rest.rstrip().endswith("data: [DONE]"), "draining: the running stream still ends with [DONE]")
    check(slow.proc.wait(timeout=60) == 0, "draining: staved exits 0")
finally:
    for server in servers:
        if server.proc.poll() is None:
            server.stop()
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print(f"{len(failures)} failed: {failures}")
    sys.exit(1)
print("ok")
