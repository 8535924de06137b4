#!/usr/bin/env python3
"""Writes the synthetic seed corpus of the fuzz targets into tests/fuzz_corpus/<target>/.

Seeds are small, valid (or nearly valid) inputs made here from nothing, so the fuzzers start from
the interesting paths; no reference data is copied. Regression inputs (regress-*) are written by
hand next to them and are not touched by this script. Run from anywhere: fuzz/make_seeds.py
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz_corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# --- GGUF -------------------------------------------------------------------------------------
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
           U64: "<Q", I64: "<q", F64: "<d"}
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gval(et, x) for x in items)
    return struct.pack(fmt[t], v)


def gguf(kvs, tensors=(), version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, ggml_type, raw bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + gval(t, v)
    offset = 0
    blobs = b""
    for name, dims, ttype, raw in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
        pad = (-len(raw)) % alignment
        blobs += raw + b"\0" * pad
        offset += len(raw) + pad
    out += b"\0" * ((-len(out)) % alignment)
    return out + blobs


def byte_level_chars():
    """GPT-2's bytes_to_unicode: every byte as a printable character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def llama_vocab():
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    words = ["\u2581", "\u2581a", "a", "b", "\u2581the", "t", "h", "e", "\u2581w", "o", "r", "l", "d", "\u2581wor"]
    tokens += words
    types += [1] * len(words)
    scores = [0.0] * (259) + [-float(i) for i in range(len(words))]
    return tokens, scores, types


def gpt2_vocab():
    chars = byte_level_chars()
    merges = ["\u0120 t", "h e", "\u0120t he", "l l", "o r"]
    tokens = chars + ["\u0120t", "he", "\u0120the", "ll", "or", "<|endoftext|>"]
    types = [1] * (len(tokens) - 1) + [3]
    return tokens, merges, types


def gguf_seeds():
    f32 = struct.pack("<8f", *range(8))
    q8 = struct.pack("<e", 0.5) + bytes(range(32))  # one Q8_0 block: fp16 scale + 32 int8
    tensors = [("token_embd.weight", [4, 2], 0, f32), ("blk.0.attn_q.weight", [32, 1], 8, q8)]
    kvs = [("general.architecture", STR, "llama"), ("general.alignment", U32, 32),
           ("llama.context_length", U32, 64), ("llama.rope.freq_base", F32, 10000.0),
           ("some.list", ARR, (I32, [1, -2, 3])), ("some.floats", ARR, (F64, [0.5, 1e300])),
           ("some.flag", BOOL, True), ("some.i64", I64, -5), ("some.u64", U64, 7),
           ("some.strings", ARR, (STR, ["x", "", "yz"]))]
    put("gguf", "seed-tensors-v3.gguf", gguf(kvs, tensors))
    put("gguf", "seed-v2-no-tensors.gguf", gguf(kvs[:3], version=2))
    put("gguf", "seed-empty.gguf", gguf([]))

    tokens, scores, types = llama_vocab()
    llama = [("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
             ("tokenizer.ggml.scores", ARR, (F32, scores)), ("tokenizer.ggml.token_type", ARR, (I32, types)),
             ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.eos_token_id", U32, 2),
             ("tokenizer.ggml.unknown_token_id", U32, 0), ("tokenizer.ggml.add_space_prefix", BOOL, True)]
    put("gguf_tokenizer", "seed-llama.gguf", gguf(llama))
    tokens, merges, types = gpt2_vocab()
    for pre in ["gpt2", "llama-bpe", "qwen2", "default"]:
        gpt2 = [("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
                ("tokenizer.ggml.token_type", ARR, (I32, types)), ("tokenizer.ggml.merges", ARR, (STR, merges)),
                ("tokenizer.ggml.pre", STR, pre), ("tokenizer.ggml.bos_token_id", U32, len(tokens) - 1),
                ("tokenizer.ggml.eos_token_id", U32, len(tokens) - 1)]
        put("gguf_tokenizer", "seed-gpt2-%s.gguf" % pre, gguf(gpt2))


def tokenizer_json_seeds():
    tokens, merges, _ = gpt2_vocab()
    vocab = {t: i for i, t in enumerate(tokens)}
    root = {
        "version": "1.0",
        "added_tokens": [{"id": len(tokens) - 1, "content": "<|endoftext|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": True, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }
    put("tokenizer_json", "seed-string-merges.json", json.dumps(root))
    root["model"]["merges"] = [m.split(" ") for m in merges]
    put("tokenizer_json", "seed-pair-merges.json", json.dumps(root))


def safetensors(header, data=b""):
    text = json.dumps(header).encode()
    text += b" " * ((-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    data = struct.pack("<4f", 1, 2, 3, 4) + struct.pack("<3e", 1, 2, 3) + b"\0\0\x80\x3f"
    h = {"__metadata__": {"format": "pt"},
         "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
         "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]},
         "c": {"dtype": "BF16", "shape": [1, 1], "data_offsets": [22, 24]},
         "d": {"dtype": "F32", "shape": [0, 5], "data_offsets": [24, 24]}}
    put("safetensors_header", "seed-three-dtypes.safetensors", safetensors(h, data))
    put("safetensors_header", "seed-empty.safetensors", safetensors({}))

    n, hd = 2, 4
    w = struct.pack("<8f", *([0.01] * 8))
    meta = {"expert_bases": "10000,20000", "top_k": "2", "n_layers": "1", "head_dim": str(hd)}
    h = {"__metadata__": meta,
         "layers.0.w1": {"dtype": "F32", "shape": [n, hd], "data_offsets": [0, 32]},
         "layers.0.w2": {"dtype": "F32", "shape": [n, n], "data_offsets": [32, 48]},
         "layers.0.w3": {"dtype": "F32", "shape": [n, hd], "data_offsets": [48, 80]}}
    put("router_checkpoint", "seed-router.safetensors", safetensors(h, w + w[:16] + w))
    meta2 = dict(meta, expert_bases=" 10000 , 1e6,17500", top_k="1")
    h2 = dict(h, __metadata__=meta2)
    put("router_checkpoint", "seed-router-spaces.safetensors", safetensors(h2, w + w[:16] + w))


def llama2c_seeds():
    dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 4, 4
    hd = dim // heads
    floats = (vocab * dim + layers * dim + layers * dim * dim * 2 + layers * kv * hd * dim * 2 +
              layers * dim + layers * hidden * dim * 3 + dim + seq * hd)
    put("llama2c_header", "seed-tied.bin", struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) +
        b"\0" * (4 * floats))
    put("llama2c_header", "seed-untied.bin", struct.pack("<7i", dim, hidden, layers, heads, kv, -vocab, seq) +
        b"\0" * (4 * (floats + vocab * dim)))


def hf_config_seeds():
    base = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "max_position_embeddings": 256, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": [2, 3], "head_dim": 16}
    put("hf_config", "seed-plain.json", json.dumps(base, indent=1))
    put("hf_config", "seed-linear.json", json.dumps(dict(base, rope_scaling={"type": "linear", "factor": 2.0})))
    put("hf_config", "seed-llama3.json", json.dumps(dict(base, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192})))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def position(mode, bases=(), fusion=0, expert=(), top_k=0):
    out = field(2, 0, varint(mode))
    if bases:
        out += field(3, 2, b"".join(struct.pack("<d", b) for b in bases))
    if fusion:
        out += field(4, 0, varint(fusion))
    if expert:
        out += field(5, 2, b"".join(struct.pack("<d", b) for b in expert))
    if top_k:
        out += field(6, 0, varint(top_k))
    return out


def request_seeds():
    # The first byte picks the message: even = GenerateRequest, odd = ScoreRequest.
    gen = field(1, 2, b"Once upon a time") + field(2, 0, varint(16)) + field(3, 5, struct.pack("<f", 0.7))
    gen += field(7, 2, b"\n\n")
    put("request", "seed-generate-plain.pb", b"\0" + gen)
    put("request", "seed-generate-buckets.pb", b"\0" + gen + field(8, 2, position(2, [10000, 17500, 18000], 2)))
    put("request", "seed-generate-moice.pb", b"\0" + gen + field(8, 2, position(3, expert=[10000, 20000], top_k=1)))
    score = field(1, 2, b"The capital of France is") + field(2, 2, b" Paris")
    put("request", "seed-score-vanilla.pb", b"\1" + score + field(3, 2, position(1)))


def config_file_seeds():
    put("config_file", "seed-buckets.yaml", "mode: buckets\nbases: [10000, 17500, 18000]\nfusion: logits\n")
    put("config_file", "seed-count.yaml", "mode: buckets\nbucket_count: 6\nfusion: probs\n")
    put("config_file", "seed-moice.yaml",
        "mode: moice\nexpert_bases: [10000, 20000]\ntop_k: 2\nrouter_path: router.safetensors\n")
    put("config_file", "seed-moice.json",
        json.dumps({"mode": "moice", "expert_bases": [10000, 20000], "top_k": 1, "router_path": "/abs/r.safetensors"}))
    put("config_file", "seed-empty.yaml", "")


if __name__ == "__main__":
    gguf_seeds()
    tokenizer_json_seeds()
    safetensors_seeds()
    llama2c_seeds()
    hf_config_seeds()
    request_seeds()
    config_file_seeds()
