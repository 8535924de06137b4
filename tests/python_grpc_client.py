#!/usr/bin/python3
"""A client that is not ours: Debian's python3-grpcio talks to staved with messages built at run
time from the .proto's descriptor set (no generated Python code). Starts staved on a loopback
ephemeral port, streams a greedy generation and reads the config.

usage: python_grpc_client.py STAVED DESCRIPTOR_SET SHARED_DIR   ($STAVE_SHARED_DIR wins; exit 77 = skipped)
"""
import json
import os
import subprocess
import sys

try:
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as e:
    print(f"skipped: {e} (apt-get install python3-grpcio python3-protobuf)")
    sys.exit(77)

staved, descriptors, shared = sys.argv[1:4]
shared = os.environ.get("STAVE_SHARED_DIR", shared)  # as the C++ tests do
model = os.path.join(shared, "models/stories260K/stories260K.bin")
golden = os.path.join(shared, "golden/stories260K/greedy.jsonl")
if not os.path.exists(model):
    print(f"skipped: reference data {model} not found; set STAVE_SHARED_DIR")
    sys.exit(77)

pool = descriptor_pool.DescriptorPool()
files = descriptor_pb2.FileDescriptorSet()
with open(descriptors, "rb") as f:
    files.ParseFromString(f.read())
for file in files.file:
    pool.Add(file)


def message(name):
    desc = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


GenerateRequest, GenerateResponse = message("stave.v1.GenerateRequest"), message("stave.v1.GenerateResponse")
GetConfigRequest, PositionConfig = message("stave.v1.GetConfigRequest"), message("stave.v1.PositionConfig")

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
                finish, version = msg.finish_reason, msg.config_version
        text = "".join(pieces)
        print(f"python grpcio: {tokens} tokens, finish {finish}, config version {version}: {prompt}{text}")
        # The reference runner's greedy text starts with the prompt and continues with ours.
        assert reference["text"].startswith(prompt + text), f"not the reference's greedy text: {reference['text']!r}"
        assert tokens > 0 and finish in ("length", "eos"), (tokens, finish)
        get_config = channel.unary_unary("/stave.v1.Config/GetConfig",
                                         request_serializer=GetConfigRequest.SerializeToString,
                                         response_deserializer=PositionConfig.FromString)
        config = get_config(GetConfigRequest(), timeout=10)
        assert config.version == 1, config
        print(f"python grpcio: GetConfig -> version {config.version}")
finally:
    server.terminate()
    server.wait(timeout=30)
print("ok")
