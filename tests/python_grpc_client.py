#!/usr/bin/python3
"""A client that is not ours: Debian's python3-grpcio talks to staved with messages built at run
time from the .proto's descriptor set (no generated Python code). Starts staved on a loopback
ephemeral port, streams a greedy generation and reads the config (its x-request-id echoed).

usage: python_grpc_client.py STAVED DESCRIPTOR_SET SHARED_DIR   ($STAVE_SHARED_DIR wins; exit 77 = skipped)
"""
import json
import os
import subprocess
import sys

from stave_proto_runtime import message_classes, stories_model  # first: it skips without grpcio

import grpc

staved, descriptors, shared_arg = sys.argv[1:4]
shared, model = stories_model(shared_arg)
golden = os.path.join(shared, "golden/stories260K/greedy.jsonl")
M = message_classes(descriptors, ["GenerateRequest", "GenerateResponse", "GetConfigRequest", "PositionConfig"])
GenerateRequest, GenerateResponse = M["GenerateRequest"], M["GenerateResponse"]
GetConfigRequest, PositionConfig = M["GetConfigRequest"], M["PositionConfig"]

server = subprocess.Popen(
    [staved, f"--model={model}", f"--tokenizer={os.path.join(shared, 'models/stories260K/tok512.bin')}",
     "--listen=127.0.0.1:0", "--metrics-listen="],
    stdout=subprocess.PIPE, text=True)
try:
    line = server.stdout.readline()
    assert line.startswith("staved: serving"), f"staved did not start: {line!r}"
    address = "127.0.0.1:" + line.rsplit(":", 1)[1].strip()
    with grpc.insecure_channel(address) as channel:
        generate = channel.unary_stream("/stave.v1.Inference/Generate",
                                        request_serializer=GenerateRequest.SerializeToString,
                                        response_deserializer=GenerateResponse.FromString)
        reference = next(row for row in map(json.loads, open(golden)) if row["prompt"])
        prompt = reference["prompt"]
        pieces, tokens, finish = [], 0, None
        for msg in generate(GenerateRequest(prompt=prompt, max_tokens=60, temperature=0), timeout=60):
            pieces.append(msg.text)
            tokens += msg.HasField("token_id")
            if msg.finish_reason:
                finish, version, finish_enum = msg.finish_reason, msg.config_version, msg.finish
        text = "".join(pieces)
        print(f"python grpcio: {tokens} tokens, finish {finish}, config version {version}: {prompt}{text}")
        # The reference runner's greedy text starts with the prompt and continues with ours.
        assert reference["text"].startswith(prompt + text), f"not the reference's greedy text: {reference['text']!r}"
        assert tokens > 0 and finish in ("length", "eos"), (tokens, finish)
        # The enum says the same as the string (proto/README.md, "Compatibility").
        reasons = GenerateResponse.DESCRIPTOR.fields_by_name["finish"].enum_type.values_by_number
        assert reasons[finish_enum].name == "FINISH_REASON_" + finish.upper(), (finish_enum, finish)
        # The first release's unprefixed enum names still parse, as the same numbers.
        modes = PositionConfig.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_name
        assert all(modes[old].number == modes["POSITION_MODE_" + old].number for old in ("VANILLA", "BUCKETS", "MOICE"))
        get_config = channel.unary_unary("/stave.v1.Config/GetConfig",
                                         request_serializer=GetConfigRequest.SerializeToString,
                                         response_deserializer=PositionConfig.FromString)
        config, call = get_config.with_call(GetConfigRequest(), timeout=10, metadata=[("x-request-id", "py-client-1")])
        assert config.version == 1, config
        request_id = dict(call.initial_metadata()).get("x-request-id")
        assert request_id == "py-client-1", f"x-request-id not echoed in the initial metadata: {request_id!r}"
        print(f"python grpcio: GetConfig -> version {config.version}, x-request-id {request_id}")
finally:
    server.terminate()
    server.wait(timeout=30)
print("ok")
