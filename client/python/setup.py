"""Builds stave_client with its gRPC stubs generated from proto/stave/v1/stave.proto.

The stubs are generated here, when pip builds the package, rather than by the CMake build, so
that `pip install client/python` works from a plain clone (no C++ build needed) and there is one
way they are made. The generator is Debian's protoc (protobuf-compiler) with the gRPC Python
plugin (protobuf-compiler-grpc), both already needed for the C++ build; they handle the proto's
`optional` fields natively. Debian's python3-grpc-tools (1.14) cannot compile this proto at all:
its bundled protoc predates proto3 `optional` and does not know
--experimental_allow_proto3_optional either, so it is used only when it is all there is.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_REL = os.path.join("stave", "v1", "stave.proto")


def proto_root():
    """The directory holding stave/v1/stave.proto: $STAVE_PROTO_DIR, else the repository's proto/."""
    candidates = [os.environ.get("STAVE_PROTO_DIR", ""), os.path.join(HERE, "..", "..", "proto")]
    for root in candidates:
        if root and os.path.isfile(os.path.join(root, PROTO_REL)):
            return os.path.abspath(root)
    sys.exit(f"stave_client: {PROTO_REL} not found under {candidates[-1]}; install from the stave "
             "repository (pip install client/python) or set STAVE_PROTO_DIR to its proto/ directory")


def protoc_command(root, out):
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc and plugin:
        return [protoc, f"--plugin=protoc-gen-grpc_python={plugin}", f"--proto_path={root}",
                f"--python_out={out}", f"--grpc_python_out={out}", os.path.join(root, PROTO_REL)]
    try:
        import grpc_tools  # noqa: F401  pip's grpcio-tools; its protoc must know proto3 optional
    except ImportError:
        sys.exit("stave_client: need protoc and grpc_python_plugin to generate the gRPC stubs "
                 "(apt-get install protobuf-compiler protobuf-compiler-grpc)")
    return [sys.executable, "-m", "grpc_tools.protoc", "--experimental_allow_proto3_optional",
            f"--proto_path={root}", f"--python_out={out}", f"--grpc_python_out={out}",
            os.path.join(root, PROTO_REL)]


def generate(package_dir):
    """Writes stave_pb2.py and stave_pb2_grpc.py into package_dir (the package in the build tree)."""
    with tempfile.TemporaryDirectory() as out:
        command = protoc_command(proto_root(), out)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"stave_client: {' '.join(command)} failed:\n{result.stderr}")
        generated = os.path.join(out, "stave", "v1")
        shutil.copy(os.path.join(generated, "stave_pb2.py"), package_dir)
        # The plugin imports the messages by the proto's path (`from stave.v1 import stave_pb2`),
        # which would need a top-level `stave` package; inside stave_client it is a sibling.
        with open(os.path.join(generated, "stave_pb2_grpc.py")) as f:
            code = f.read()
        code, n = re.subn(r"^from stave\.v1 import stave_pb2 as", "from . import stave_pb2 as", code,
                          flags=re.M)
        if n != 1:
            sys.exit("stave_client: unexpected import line in the generated stave_pb2_grpc.py")
        with open(os.path.join(package_dir, "stave_pb2_grpc.py"), "w") as f:
            f.write(code)


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        generate(os.path.join(self.build_lib, "stave_client"))


setup(cmdclass={"build_py": BuildWithStubs})
