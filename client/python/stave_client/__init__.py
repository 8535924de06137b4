"""Python client for staved (the stave gRPC inference server).

    from stave_client import Client
    with Client("127.0.0.1:50051") as client:
        for token in client.generate("Once upon a time", max_tokens=20, temperature=0):
            print(token.text, end="", flush=True)

A thin typed layer over the stubs generated from proto/stave/v1/stave.proto when the package is
built (`stave_pb2`, `stave_pb2_grpc`, importable from here for anything the wrapper does not
cover). Every call has a deadline (the client's `timeout`, 60 s unless given; per call
`timeout=`; None = no deadline) and gRPC failures are raised as StaveError.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence

import grpc

from . import stave_pb2, stave_pb2_grpc

__all__ = ["Client", "Generation", "ModelInfo", "PositionConfig", "Score", "StaveError", "Token",
           "Tokens", "stave_pb2", "stave_pb2_grpc"]
__version__ = "0.1.0"

DEFAULT_TIMEOUT = 60.0  # seconds per call; a Generate stream's deadline covers the whole stream

_MODES = {"vanilla": stave_pb2.POSITION_MODE_VANILLA, "buckets": stave_pb2.POSITION_MODE_BUCKETS, "moice": stave_pb2.POSITION_MODE_MOICE}
_FUSIONS = {"logits": stave_pb2.FUSION_LOGITS, "probs": stave_pb2.FUSION_PROBS}
_UNSET = object()  # "use the client's timeout", distinct from None (no deadline)


class StaveError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `details` the server's message."""

    def __init__(self, target: str, code: grpc.StatusCode, details: str, timeout: Optional[float]):
        self.target, self.code, self.details = target, code, details
        message = f"{target}: {code.name}: {details}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
            message += f" (no complete answer within the {timeout:g} s deadline; pass timeout=)"
        super().__init__(message)


@dataclass(frozen=True)
class Token:
    """One streamed message: the generated token (None in a final message without one) and the
    text it releases (may be empty: a character split across tokens comes with its last byte)."""
    id: Optional[int]
    text: str


@dataclass
class PositionConfig:
    """The server's position configuration, or a per-request override (mode set).

    mode: "vanilla", "buckets" or "moice"; fusion: "logits" or "probs"; router: a router name
    the server lists (ModelInfo.routers), "" = untrained routers."""
    mode: str = "vanilla"
    bases: List[float] = field(default_factory=list)
    fusion: str = "logits"
    expert_bases: List[float] = field(default_factory=list)
    top_k: int = 0
    router: str = ""
    version: int = 0  # answers only: ignored in a request
    config_file: str = ""  # answers only: the file the server watches, and why it was rejected
    config_file_error: str = ""

    @classmethod
    def from_proto(cls, p: stave_pb2.PositionConfig) -> "PositionConfig":
        mode = {v: k for k, v in _MODES.items()}.get(p.mode, f"unknown ({p.mode})")
        fusion = {v: k for k, v in _FUSIONS.items()}.get(p.fusion, "logits")
        return cls(mode=mode, bases=list(p.bases), fusion=fusion, expert_bases=list(p.expert_bases),
                   top_k=p.top_k, router=p.router, version=p.version, config_file=p.config_file,
                   config_file_error=p.config_file_error)

    def to_proto(self) -> stave_pb2.PositionConfig:
        return stave_pb2.PositionConfig(mode=_enum(_MODES, self.mode, "mode"), bases=self.bases,
                                        fusion=_enum(_FUSIONS, self.fusion, "fusion"),
                                        expert_bases=self.expert_bases, top_k=self.top_k,
                                        router=self.router)


@dataclass(frozen=True)
class Score:
    token_ids: List[int]      # the continuation's tokens
    logprobs: List[float]     # per token, natural log
    total_logprob: float
    is_greedy: bool           # every token was the model's argmax
    config_version: int


@dataclass(frozen=True)
class Tokens:
    token_ids: List[int]
    pieces: List[str]


@dataclass(frozen=True)
class ModelInfo:
    path: str
    format: str
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    context_length: int
    rope_theta: float
    routers: List[str]


def _enum(table, name, what):
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"{what}: {name!r} is not one of {', '.join(table)}") from None


class Generation:
    """A Generate stream: iterate it for Tokens. Once it is exhausted, `finish_reason` ("length",
    "stop", "eos", "cancelled"), `prompt_tokens`, `completion_tokens`, `config_version` (0 = the
    request's own position config) and `text` (everything streamed) are set. `cancel()` stops it."""

    def __init__(self, call, client: "Client", timeout: Optional[float]):
        self._call, self._client, self._timeout = call, client, timeout
        self.text = ""
        self.finish_reason: Optional[str] = None
        self.prompt_tokens = self.completion_tokens = self.config_version = 0

    def __iter__(self) -> Iterator[Token]:
        try:
            for msg in self._call:
                if msg.finish_reason:
                    self.finish_reason = msg.finish_reason
                    self.prompt_tokens = msg.usage.prompt_tokens
                    self.completion_tokens = msg.usage.completion_tokens
                    self.config_version = msg.config_version
                self.text += msg.text
                if msg.HasField("token_id") or msg.text:
                    yield Token(msg.token_id if msg.HasField("token_id") else None, msg.text)
        except grpc.RpcError as e:
            raise self._client._error(e, self._timeout) from None

    def cancel(self) -> None:
        self._call.cancel()


class Client:
    """A connection to staved at `target` (HOST:PORT or any gRPC target, e.g. dns:///svc:50051).

    credentials: grpc.ssl_channel_credentials(...) for a TLS server (default: plain text).
    admin_token: sent with update_config (default: $STAVE_ADMIN_TOKEN, as the stave CLI does);
    a server started without --admin-token-file accepts updates from loopback clients only.
    timeout: the default deadline of every call in seconds (None = none)."""

    def __init__(self, target: str, *, credentials: Optional[grpc.ChannelCredentials] = None,
                 admin_token: Optional[str] = None, timeout: Optional[float] = DEFAULT_TIMEOUT,
                 options: Sequence = ()):
        self.target = target
        self.timeout = timeout
        token = admin_token if admin_token is not None else os.environ.get("STAVE_ADMIN_TOKEN", "")
        self._admin_token = token.strip()
        self._channel = (grpc.secure_channel(target, credentials, options) if credentials
                         else grpc.insecure_channel(target, options))
        self._inference = stave_pb2_grpc.InferenceStub(self._channel)
        self._config = stave_pb2_grpc.ConfigStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _deadline(self, timeout):
        return self.timeout if timeout is _UNSET else timeout

    def _error(self, e: grpc.RpcError, timeout: Optional[float]) -> StaveError:
        return StaveError(self.target, e.code(), e.details(), timeout)

    def _unary(self, method, request, timeout, metadata=None):
        deadline = self._deadline(timeout)
        try:
            return method(request, timeout=deadline, metadata=metadata)
        except grpc.RpcError as e:
            raise self._error(e, deadline) from None

    def generate(self, prompt: str, *, max_tokens: int = 256, temperature: float = 1.0,
                 top_p: float = 0.9, top_k: int = 0, seed: Optional[int] = None,
                 stop: Sequence[str] = (), position: Optional[PositionConfig] = None,
                 timeout=_UNSET) -> Generation:
        """Streams the generated tokens (iterate the result). temperature 0 = greedy; seed None =
        the server picks a random one; position overrides the server's config for this request."""
        request = stave_pb2.GenerateRequest(prompt=prompt, max_tokens=max_tokens,
                                            temperature=temperature, top_p=top_p, top_k=top_k,
                                            stop=list(stop))
        if seed is not None:
            request.seed = seed
        if position is not None:
            request.position.CopyFrom(position.to_proto())
        deadline = self._deadline(timeout)
        return Generation(self._inference.Generate(request, timeout=deadline), self, deadline)

    def score(self, prompt: str, continuation: str, *, position: Optional[PositionConfig] = None,
              timeout=_UNSET) -> Score:
        """Log-probabilities of `continuation` after `prompt`."""
        request = stave_pb2.ScoreRequest(prompt=prompt, continuation=continuation)
        if position is not None:
            request.position.CopyFrom(position.to_proto())
        r = self._unary(self._inference.Score, request, timeout)
        return Score(list(r.token_ids), list(r.logprobs), r.total_logprob, r.is_greedy,
                     r.config_version)

    def tokenize(self, text: str, *, add_bos: bool = False, timeout=_UNSET) -> Tokens:
        r = self._unary(self._inference.Tokenize, stave_pb2.TokenizeRequest(text=text, add_bos=add_bos),
                        timeout)
        return Tokens(list(r.token_ids), list(r.pieces))

    def get_model_info(self, *, timeout=_UNSET) -> ModelInfo:
        r = self._unary(self._inference.GetModelInfo, stave_pb2.GetModelInfoRequest(), timeout)
        return ModelInfo(r.path, r.format, r.dim, r.n_layers, r.n_heads, r.n_kv_heads, r.vocab_size,
                         r.context_length, r.rope_theta, list(r.routers))

    def get_config(self, *, timeout=_UNSET) -> PositionConfig:
        return PositionConfig.from_proto(
            self._unary(self._config.GetConfig, stave_pb2.GetConfigRequest(), timeout))

    def update_config(self, *, mode: Optional[str] = None, bases: Optional[Sequence[float]] = None,
                      bucket_count: Optional[int] = None, fusion: Optional[str] = None,
                      expert_bases: Optional[Sequence[float]] = None, top_k: Optional[int] = None,
                      router: Optional[str] = None, expected_version: int = 0,
                      timeout=_UNSET) -> PositionConfig:
        """Changes only the fields given and returns the new config. bucket_count alone (no bases)
        lets the server search the bases; expected_version != 0 applies the update only at that
        version (else StaveError FAILED_PRECONDITION)."""
        if bases and bucket_count:
            raise ValueError("give bases or bucket_count, not both")
        request = stave_pb2.UpdateConfigRequest(expected_version=expected_version)
        if mode is not None:
            request.mode = _enum(_MODES, mode, "mode")
        if bases:
            request.bases.extend(bases)
        if bucket_count:
            request.bucket_count = bucket_count
        if fusion is not None:
            request.fusion = _enum(_FUSIONS, fusion, "fusion")
        if expert_bases:
            request.expert_bases.extend(expert_bases)
        if top_k is not None:
            request.top_k = top_k
        if router is not None:
            request.router = router
        metadata = [("authorization", f"Bearer {self._admin_token}")] if self._admin_token else None
        return PositionConfig.from_proto(
            self._unary(self._config.UpdateConfig, request, timeout, metadata))
