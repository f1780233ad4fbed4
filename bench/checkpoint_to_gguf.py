#!/usr/bin/env python3
"""Write a state-spaces Mamba checkpoint as a GGUF file that llama.cpp can load.

This exists so bench/compare_llamacpp.sh can run llama.cpp on exactly the weights that
mambacpp runs. llama.cpp's own convert_hf_to_gguf.py does the same job but imports
transformers even for Mamba, so it fails where only numpy is installed.

Input: a directory with config.json (state-spaces schema, with ssm_cfg) and one F32 or BF16
model.safetensors, such as scripts/make_random_checkpoint.py writes. Output: one GGUF file with
architecture "mamba" (Mamba-1) or "mamba2", the GPT-NeoX vocabulary from a tokenizer.json, and
the tensors under llama.cpp's names.

Requires numpy and the gguf package (gguf-py in a llama.cpp source tree; pass --gguf-py).

The tensor layout follows llama.cpp's converter (checked against ggml-org/llama.cpp at commit
1425386fd996, July 2026):
  * A is stored as -exp(A_log). Mamba-2's A and D get a trailing axis of 1.
  * The depthwise conv weight [d_inner, 1, d_conv] drops its middle axis.
  * Mamba-2's gated norm weight is reshaped to [ngroups, d_inner / ngroups].
  * With a 16-bit --outtype, only 2-D ".weight" tensors other than ssm_conv1d and the norms
    become F16 or BF16. Everything else stays F32.

Checked with f32 files of random mamba-130m and mamba2-130m checkpoints: llama-completion
(llama.cpp 1425386fd996) and `mambacpp generate` gave the same 12 greedy tokens.
NOTE: logits were not compared number by number, and the f16/bf16 files were only loaded
and benchmarked.
"""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path,
                        help="directory with config.json and model.safetensors")
    parser.add_argument("output", type=Path, help="GGUF file to write")
    parser.add_argument("--outtype", choices=["f32", "f16", "bf16"], default="f32",
                        help="storage type of the 2-D weight matrices (default: f32)")
    parser.add_argument("--tokenizer", type=Path, required=True,
                        help="tokenizer.json of the GPT-NeoX byte-level BPE vocabulary")
    parser.add_argument("--gguf-py", type=Path,
                        help="gguf-py directory of a llama.cpp source tree, if the gguf "
                             "package is not installed")
    return parser.parse_args()


def read_safetensors(path):
    """Return {name: float32 numpy array} for every tensor. F32 tensors stay memory-mapped,
    and F16 and BF16 ones are widened into copies."""
    with open(path, "rb") as f:
        header_size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_size))
    data_start = 8 + header_size
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        chunk = raw[data_start + begin:data_start + end]
        if info["dtype"] == "BF16":
            # bfloat16 is the upper half of a float32, so widen through uint32.
            values = chunk.view(np.uint16).astype(np.uint32) << 16
            tensors[name] = values.view(np.float32).reshape(info["shape"])
        elif info["dtype"] in SAFETENSORS_DTYPES:
            array = chunk.view(SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
            tensors[name] = array.astype(np.float32, copy=False)
        else:
            sys.exit(f"{path}: tensor {name} has unsupported dtype {info['dtype']}, "
                     "expected F32, F16 or BF16")
    return tensors


def load_vocabulary(tokenizer_path, padded_size):
    """Return (tokens, token_types, merges) in id order, padded with unused tokens."""
    import gguf

    model = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    if model["model"]["type"] != "BPE":
        sys.exit(f"{tokenizer_path}: unsupported model type {model['model']['type']}, expected BPE")

    token_by_id = {token_id: (text, gguf.TokenType.NORMAL)
                   for text, token_id in model["model"]["vocab"].items()}
    for added in model.get("added_tokens", []):
        token_type = gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED
        token_by_id[added["id"]] = (added["content"], token_type)

    if len(token_by_id) > padded_size:
        sys.exit(f"{tokenizer_path}: {len(token_by_id)} tokens do not fit the "
                 f"{padded_size}-row embedding")
    tokens, token_types = [], []
    for token_id in range(padded_size):
        text, token_type = token_by_id.get(token_id, (f"[PAD{token_id}]", gguf.TokenType.UNUSED))
        tokens.append(text)
        token_types.append(token_type)

    # tokenizers writes merges either as "a b" strings or as [a, b] pairs.
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["model"]["merges"]]
    return tokens, token_types, merges


def gguf_tensors(tensors, layer_kind, n_layer, ngroups):
    """Yield (llama.cpp name, array) pairs in the layout llama.cpp expects."""
    yield "token_embd.weight", tensors["backbone.embedding.weight"]
    yield "output_norm.weight", tensors["backbone.norm_f.weight"]
    if "lm_head.weight" in tensors and not np.array_equal(
            tensors["lm_head.weight"], tensors["backbone.embedding.weight"]):
        yield "output.weight", tensors["lm_head.weight"]

    for layer in range(n_layer):
        src = f"backbone.layers.{layer}."
        dst = f"blk.{layer}."
        yield dst + "attn_norm.weight", tensors[src + "norm.weight"]
        yield dst + "ssm_in.weight", tensors[src + "mixer.in_proj.weight"]
        conv = tensors[src + "mixer.conv1d.weight"]
        yield dst + "ssm_conv1d.weight", conv.reshape(conv.shape[0], conv.shape[2])
        yield dst + "ssm_conv1d.bias", tensors[src + "mixer.conv1d.bias"]
        a = -np.exp(tensors[src + "mixer.A_log"])
        d = tensors[src + "mixer.D"]
        if layer_kind == "Mamba1":
            yield dst + "ssm_x.weight", tensors[src + "mixer.x_proj.weight"]
            yield dst + "ssm_dt.weight", tensors[src + "mixer.dt_proj.weight"]
            yield dst + "ssm_dt.bias", tensors[src + "mixer.dt_proj.bias"]
            yield dst + "ssm_a", a
            yield dst + "ssm_d", d
        else:
            yield dst + "ssm_dt.bias", tensors[src + "mixer.dt_bias"]
            yield dst + "ssm_a", a.reshape(-1, 1)
            yield dst + "ssm_d", d.reshape(-1, 1)
            norm = tensors[src + "mixer.norm.weight"]
            yield dst + "ssm_norm.weight", norm.reshape(ngroups, -1)
        yield dst + "ssm_out.weight", tensors[src + "mixer.out_proj.weight"]


def storage_type(name, array, outtype):
    import gguf

    keeps_f32 = (array.ndim < 2 or not name.endswith(".weight")
                 or name.endswith("_norm.weight") or ".ssm_conv1d." in name)
    if outtype == "f32" or keeps_f32:
        return gguf.GGMLQuantizationType.F32
    if outtype == "f16":
        return gguf.GGMLQuantizationType.F16
    return gguf.GGMLQuantizationType.BF16


def main():
    args = parse_args()
    if args.gguf_py:
        sys.path.insert(0, str(args.gguf_py))
    import gguf

    config = json.loads((args.checkpoint / "config.json").read_text())
    ssm = config["ssm_cfg"]
    layer_kind = ssm.get("layer", "Mamba1")
    if layer_kind not in ("Mamba1", "Mamba2"):
        sys.exit(f"{args.checkpoint}: invalid ssm_cfg.layer {layer_kind!r}, expected Mamba1 or Mamba2")
    if config.get("attn_layer_idx") or config.get("d_intermediate", 0):
        sys.exit(f"{args.checkpoint}: attention layers and MLPs have no llama.cpp "
                 "mamba/mamba2 equivalent")

    d_model = config["d_model"]
    n_layer = config["n_layer"]
    expand = ssm.get("expand", 2)
    d_inner = expand * d_model
    d_conv = ssm.get("d_conv", 4)
    ngroups = ssm.get("ngroups", 1)
    tensors = read_safetensors(args.checkpoint / "model.safetensors")
    padded_vocab = tensors["backbone.embedding.weight"].shape[0]

    arch = gguf.MODEL_ARCH.MAMBA if layer_kind == "Mamba1" else gguf.MODEL_ARCH.MAMBA2
    writer = gguf.GGUFWriter(args.output, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(args.checkpoint.name)
    # The same placeholders as llama.cpp's converter: a 2^20-token context length and zero
    # feed-forward and attention head counts, which its loader requires but Mamba ignores.
    writer.add_context_length(2 ** 20)
    writer.add_embedding_length(d_model)
    writer.add_feed_forward_length(0)
    writer.add_head_count(0)
    writer.add_block_count(n_layer)
    writer.add_ssm_conv_kernel(d_conv)
    writer.add_ssm_inner_size(d_inner)
    writer.add_layer_norm_rms_eps(config.get("norm_epsilon", 1e-5))
    if layer_kind == "Mamba1":
        writer.add_ssm_state_size(ssm.get("d_state", 16))
        writer.add_ssm_time_step_rank(ssm.get("dt_rank", -(d_model // -16)))
        writer.add_ssm_dt_b_c_rms(False)
    else:
        writer.add_ssm_state_size(ssm.get("d_state", 128))
        # llama.cpp stores Mamba-2's head count in the time-step rank field.
        writer.add_ssm_time_step_rank(d_inner // ssm.get("headdim", 64))
        writer.add_ssm_group_count(ngroups)
    file_types = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                  "bf16": gguf.LlamaFileType.MOSTLY_BF16}
    writer.add_file_type(file_types[args.outtype])

    tokens, token_types, merges = load_vocabulary(args.tokenizer, padded_vocab)
    writer.add_tokenizer_model("gpt2")
    # llama.cpp names the GPT-NeoX pre-tokenizer "mpt" when it has no tokenizer hash to go by.
    writer.add_tokenizer_pre("mpt")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    endoftext = tokens.index("<|endoftext|>")
    writer.add_bos_token_id(endoftext)
    writer.add_eos_token_id(endoftext)
    writer.add_unk_token_id(endoftext)

    for name, array in gguf_tensors(tensors, layer_kind, n_layer, ngroups):
        qtype = storage_type(name, array, args.outtype)
        data = np.ascontiguousarray(array, dtype=np.float32)
        if qtype == gguf.GGMLQuantizationType.F16:
            data = data.astype(np.float16)
        elif qtype == gguf.GGMLQuantizationType.BF16:
            data = gguf.quants.quantize(data, qtype)
        writer.add_tensor(name, data, raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
