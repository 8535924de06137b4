#!/usr/bin/python3
"""Soak test: staved under mixed load for a bounded time, then checks that nothing went wrong.

Load (client threads, loopback only): generate streams of random lengths, temperatures, seeds and
position modes; streams cancelled part-way; calls with short deadlines; Score calls; UpdateConfig
calls; rewrites of the --config file (valid and invalid); hostile requests (oversized prompts,
router paths, a frozen base search, empty prompts). Passes when there were 0 unexpected status
codes, no sequence is left running, the KV pool is empty at the end, resident memory grew under
5 % after the warm-up (the first fifth of the run), and the server counted every call the client
saw complete. Prints one JSON summary.

usage: soak.py STAVED DESCRIPTOR_SET SHARED_DIR  (minutes: $STAVE_SOAK_MINUTES, default 10;
       $STAVE_SHARED_DIR wins; exit 77 = skipped)
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from stave_proto_runtime import message_classes, stories_model  # first: it skips without grpcio

import grpc

staved, descriptors, shared_arg = sys.argv[1:4]
shared, model = stories_model(shared_arg)
minutes = float(os.environ.get("STAVE_SOAK_MINUTES", "10"))
M = message_classes(descriptors, [
    "GenerateRequest", "GenerateResponse", "ScoreRequest", "ScoreResponse", "UpdateConfigRequest",
    "PositionConfig", "SearchBasesRequest", "SearchBasesResponse", "GetConfigRequest"])
BUCKETS, MOICE, VANILLA = 2, 3, 1
C = grpc.StatusCode

workdir = tempfile.mkdtemp(prefix="stave_soak_")
config_file = os.path.join(workdir, "position.yaml")
with open(config_file, "w") as f:
    f.write("mode: vanilla\n")
server = subprocess.Popen(
    [staved, f"--model={model}", f"--tokenizer={os.path.join(shared, 'models/stories260K/tok512.bin')}",
     "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", f"--config={config_file}", "--config-poll-ms=200",
     "--max-active=16", "--queue-size=64", "--threads=2"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
metrics_url = address = None
for line in server.stdout:
    if line.startswith("staved: metrics on"):
        metrics_url = line.split(" on ", 1)[1].strip()
    if line.startswith("staved: serving"):
        address = "127.0.0.1:" + line.rsplit(":", 1)[1].strip()
        break
assert address and metrics_url, "staved did not start"

lock = threading.Lock()
counts = {}            # (kind, code) -> n
unexpected = []        # (kind, code, message)
client_generate_done = [0]  # Generate calls whose final status the client saw (the server saw them too)
deadline_calls = [0]


def record(kind, code, allowed, detail=""):
    with lock:
        counts[(kind, code.name)] = counts.get((kind, code.name), 0) + 1
        if code not in allowed:
            unexpected.append((kind, code.name, detail[:200]))


def metric(text, series):
    m = re.search(r"^" + re.escape(series) + r" ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def scrape():
    return urllib.request.urlopen(metrics_url, timeout=10).read().decode()


def rss_kb():
    with open(f"/proc/{server.pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


stop_at = time.time() + minutes * 60
prompts = ["Once upon a time", "The little dog", "Lily and Ben went to the park", "One day, a big bird"]


def worker(seed):
    rnd = random.Random(seed)
    channel = grpc.insecure_channel(address)
    generate = channel.unary_stream("/stave.v1.Inference/Generate", request_serializer=M["GenerateRequest"].SerializeToString,
                                    response_deserializer=M["GenerateResponse"].FromString)
    score = channel.unary_unary("/stave.v1.Inference/Score", request_serializer=M["ScoreRequest"].SerializeToString,
                                response_deserializer=M["ScoreResponse"].FromString)
    update = channel.unary_unary("/stave.v1.Config/UpdateConfig", request_serializer=M["UpdateConfigRequest"].SerializeToString,
                                 response_deserializer=M["PositionConfig"].FromString)
    search = channel.unary_unary("/stave.v1.Config/SearchBases", request_serializer=M["SearchBasesRequest"].SerializeToString,
                                 response_deserializer=M["SearchBasesResponse"].FromString)
    while time.time() < stop_at:
        kind = rnd.choice(["stream"] * 5 + ["cancel", "deadline", "score", "update", "file", "hostile"])
        request = M["GenerateRequest"](prompt=rnd.choice(prompts), max_tokens=rnd.randint(1, 64),
                                       temperature=rnd.choice([0, 0.8, 1.0]), seed=rnd.randint(0, 1 << 30))
        mode = rnd.choice([None, None, BUCKETS, MOICE])
        if mode == BUCKETS:
            request.position.mode = BUCKETS
            request.position.bases.extend(rnd.sample([10000, 15000, 20000, 25000], rnd.randint(1, 4)))
        elif mode == MOICE:
            request.position.mode = MOICE
            request.position.expert_bases.extend([10000, 20000])
            request.position.top_k = rnd.randint(1, 2)
        try:
            if kind == "stream":
                for _ in generate(request, timeout=60):
                    pass
                record(kind, C.OK, {C.OK, C.RESOURCE_EXHAUSTED})
                with lock:
                    client_generate_done[0] += 1
            elif kind == "cancel":
                call = generate(request, timeout=60)
                next(call, None)  # the server has the call once a message came back
                call.cancel()
                for _ in call:
                    pass
                record(kind, C.OK, {C.OK})  # finished before the cancel landed
                with lock:
                    client_generate_done[0] += 1
            elif kind == "deadline":
                with lock:
                    deadline_calls[0] += 1
                for _ in generate(request, timeout=rnd.uniform(0.002, 0.05)):
                    pass
                record(kind, C.OK, {C.OK})
            elif kind == "score":
                score(M["ScoreRequest"](prompt=request.prompt, continuation=" there was a cat", position=request.position),
                      timeout=60)
                record(kind, C.OK, {C.OK})
            elif kind == "update":
                r = M["UpdateConfigRequest"](mode=rnd.choice([VANILLA, BUCKETS]))
                r.bases.extend([10000, rnd.choice([15000, 20000])])
                update(r, timeout=30)
                record(kind, C.OK, {C.OK})
            elif kind == "file":
                tmp = f"{config_file}.{seed}.tmp"  # rename: the watcher never reads half a file
                with open(tmp, "w") as f:
                    f.write(rnd.choice(["mode: vanilla\n", "mode: buckets\nbases: [10000, 20000]\n", "mode: nonsense\n"]))
                os.replace(tmp, config_file)
                record(kind, C.OK, {C.OK})
            else:
                which = rnd.randint(0, 3)
                if which == 0:
                    for _ in generate(M["GenerateRequest"](prompt="x" * ((1 << 20) + 1), max_tokens=1), timeout=30):
                        pass
                elif which == 1:
                    bad = M["GenerateRequest"](prompt="Hi", max_tokens=1)
                    bad.position.mode = MOICE
                    bad.position.expert_bases.append(10000)
                    bad.position.router_path = "/etc/passwd"
                    for _ in generate(bad, timeout=30):
                        pass
                elif which == 2:
                    search(M["SearchBasesRequest"](count=4, min_base=1e16, max_base=1e16 + 2, step=0.5), timeout=30)
                else:
                    for _ in generate(M["GenerateRequest"](prompt="", max_tokens=1), timeout=30):
                        pass
                record("hostile", C.OK, set(), f"hostile request {which} was accepted")
        except grpc.RpcError as e:
            code = e.code()
            allowed = {"stream": {C.RESOURCE_EXHAUSTED}, "cancel": {C.CANCELLED}, "deadline": {C.DEADLINE_EXCEEDED},
                       "score": {C.RESOURCE_EXHAUSTED}, "update": set(), "file": set(),
                       "hostile": {C.INVALID_ARGUMENT}}[kind]
            record(kind, code, allowed, e.details() or "")
            if kind in ("stream", "cancel") and code != C.DEADLINE_EXCEEDED:
                with lock:
                    client_generate_done[0] += 1
    channel.close()


def guarded(seed):
    try:
        worker(seed)
    except Exception as e:  # a client-side failure is a failure of the run, not a silent thread
        with lock:
            unexpected.append(("client", type(e).__name__, str(e)[:200]))


rss = []
threads = [threading.Thread(target=guarded, args=(i,)) for i in range(8)]
start = time.time()
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    rss.append((time.time() - start, rss_kb()))
    time.sleep(1)
for t in threads:
    t.join()
time.sleep(1)
idle = scrape()
for _ in range(100):  # every sequence ends: nothing stuck
    if metric(idle, "stave_active_sequences") == 0 and metric(idle, "stave_kv_cache_used_blocks") == 0:
        break
    time.sleep(0.1)
    idle = scrape()
server_generate = sum(float(v) for v in re.findall(r'^stave_requests_total\{[^}]*method="Generate"[^}]*\} ([0-9.e+-]+)$', idle, re.M))
warm = [kb for t, kb in rss if t >= 0.2 * minutes * 60]
growth = (max(warm[len(warm) // 2:]) - warm[0]) / warm[0] if len(warm) > 2 else 0.0
summary = {
    "minutes": minutes, "calls": sum(counts.values()), "by_kind_and_code": {f"{k}:{c}": n for (k, c), n in sorted(counts.items())},
    "unexpected": unexpected[:20], "unexpected_count": len(unexpected),
    "rss_mb_after_warmup": round(warm[0] / 1024, 1) if warm else None, "rss_mb_end": round(rss[-1][1] / 1024, 1),
    "rss_growth_after_warmup": round(growth, 4),
    "active_sequences_at_end": metric(idle, "stave_active_sequences"), "kv_blocks_used_at_end": metric(idle, "stave_kv_cache_used_blocks"),
    "queue_depth_at_end": metric(idle, "stave_queue_depth"),
    "generate_calls_client_saw_end": client_generate_done[0], "generate_calls_server_counted": server_generate,
    "deadline_calls": deadline_calls[0], "preemptions": metric(idle, "stave_preemptions_total"),
}
server.terminate()
server.wait(timeout=60)
print(json.dumps(summary, indent=1))
failures = []
if unexpected:
    failures.append(f"{len(unexpected)} unexpected status codes")
if summary["active_sequences_at_end"] != 0 or summary["kv_blocks_used_at_end"] != 0 or summary["queue_depth_at_end"] != 0:
    failures.append("a sequence, its blocks or a queued request was left behind")
if growth >= 0.05:
    failures.append(f"RSS grew {growth:.1%} after the warm-up")
# Every call the client saw end was counted by the server; deadline calls may expire before
# the server sees them, so they may or may not be counted.
if not (client_generate_done[0] <= server_generate <= client_generate_done[0] + deadline_calls[0] + counts.get(("hostile", "INVALID_ARGUMENT"), 0)):
    failures.append("the server's Generate count does not match the client's")
if failures:
    print("FAILED: " + "; ".join(failures))
    sys.exit(1)
print("ok")
