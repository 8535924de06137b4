"""Shared by the Python tests: staved's messages built at run time from the descriptor set the
build writes (no generated code), and the reference model, with the same skip rules (exit 77)."""
import os
import sys

try:
    import grpc  # noqa: F401  (imported here so a missing package skips every script alike)
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as e:
    print(f"skipped: {e} (apt-get install python3-grpcio python3-protobuf)")
    sys.exit(77)


def stories_model(shared_arg):
    """stories260K's model path under $STAVE_SHARED_DIR (it wins) or `shared_arg`; skips without it."""
    shared = os.environ.get("STAVE_SHARED_DIR", shared_arg)  # as the C++ tests do
    model = os.path.join(shared, "models/stories260K/stories260K.bin")
    if not os.path.exists(model):
        print(f"skipped: reference data {model} not found; set STAVE_SHARED_DIR")
        sys.exit(77)
    return shared, model


def message_classes(descriptor_set, names):
    """{name: class} for the stave.v1 messages `names`, read from the descriptor set file."""
    pool = descriptor_pool.DescriptorPool()
    files = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set, "rb") as f:
        files.ParseFromString(f.read())
    for file in files.file:
        pool.Add(file)

    def message(name):
        desc = pool.FindMessageTypeByName("stave.v1." + name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)

    return {name: message(name) for name in names}
