#!/usr/bin/env python3
"""Write a seeded random Mamba checkpoint in the exact shape of a published model.

The output directory gets config.json (state-spaces schema) and model.safetensors (F32,
state-spaces tensor names, tied embeddings). The weights are random, so the generated text
means nothing. The files exist to measure load time, memory use and speed at real size
without downloading a trained model.

Only the standard library is used, because numpy is not available everywhere this runs. Every
float is built from random bytes with C-speed operations on whole buffers (bytes.translate,
extended-slice assignment, big-integer AND/OR), never with a Python loop per element, so the
1.4B-parameter shape (about 5.6 GB) takes minutes rather than hours.

Value distributions:
  * Linear and conv weights: uniform on [-b, b], where b is the power of two nearest to
    1/sqrt(fan_in) (so within a factor sqrt(2) of PyTorch's default bound).
  * Embedding: normal-like with a target standard deviation of 0.02. Each power-of-two octave
    of |x| gets the normal's probability mass (rounded to 1/256), and values are uniform inside
    an octave, which widens the result to a standard deviation of about 0.022.
  * Mamba-1 A_log[i, n] = ln(n + 1); Mamba-2 A_log = ln(U(1, 16)).
  * dt bias = softplus^-1(dt) with dt log-uniform in [1e-3, 0.1].
  * D = 1, all RMSNorm weights = 1.
No random value is below 2**-8 of its bound in magnitude, so no denormals reach the kernels.

The same seed and shape always give the same bytes: each tensor has its own generator, seeded
from the seed and the tensor's name.
"""

import argparse
import functools
import json
import math
import os
import random
import shutil
import struct
import sys
import time

# Shapes of the published state-spaces checkpoints. vocab_size is the tokenizer's size; the
# embedding has vocab_size rounded up to pad_vocab_size_multiple rows.
SHAPES = {
    "mamba-130m": dict(layer="Mamba1", d_model=768, n_layer=24, vocab_size=50277,
                       pad_vocab_size_multiple=8, d_state=16, d_conv=4, expand=2, dt_rank=48),
    "mamba-1.4b": dict(layer="Mamba1", d_model=2048, n_layer=48, vocab_size=50277,
                       pad_vocab_size_multiple=8, d_state=16, d_conv=4, expand=2, dt_rank=128),
    "mamba2-130m": dict(layer="Mamba2", d_model=768, n_layer=24, vocab_size=50277,
                        pad_vocab_size_multiple=16, d_state=128, d_conv=4, expand=2,
                        headdim=64, ngroups=1, chunk_size=256),
    "mamba2-1.3b": dict(layer="Mamba2", d_model=2048, n_layer=48, vocab_size=50277,
                        pad_vocab_size_multiple=16, d_state=128, d_conv=4, expand=2,
                        headdim=64, ngroups=1, chunk_size=256),
}

# Elements generated per bulk step: 4 Mi floats (16 MiB), small enough to keep memory flat.
CHUNK_ELEMENTS = 1 << 22

# Octave indices run from 0 (the top octave [b/2, b)) to OCTAVES - 1; the last one also takes
# the mass of everything smaller, so no denormal or tiny value is produced.
OCTAVES = 8


def padded_vocab(shape):
    multiple = shape["pad_vocab_size_multiple"]
    return (shape["vocab_size"] + multiple - 1) // multiple * multiple


def config_json(shape):
    """Return config.json's content in the state-spaces MambaConfig schema."""
    ssm_cfg = {"layer": shape["layer"], "d_state": shape["d_state"],
               "d_conv": shape["d_conv"], "expand": shape["expand"]}
    if shape["layer"] == "Mamba1":
        ssm_cfg["dt_rank"] = shape["dt_rank"]
    else:
        ssm_cfg.update(headdim=shape["headdim"], ngroups=shape["ngroups"],
                       chunk_size=shape["chunk_size"])
    return {
        "d_model": shape["d_model"],
        "d_intermediate": 0,
        "n_layer": shape["n_layer"],
        "vocab_size": shape["vocab_size"],
        "ssm_cfg": ssm_cfg,
        "attn_layer_idx": [],
        "attn_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": shape["pad_vocab_size_multiple"],
        "tie_embeddings": True,
    }


# ---- Value generators -------------------------------------------------------------------
# Each generator is a function (rng, count) -> bytes of `count` little-endian float32 values.


def octave_table(masses, top_exponent):
    """Build the two translate tables that turn a random byte into an octave's exponent bits.

    masses[k] is the probability of octave k, i.e. |x| in [2**(top_exponent-k-1),
    2**(top_exponent-k)). The 256 byte values are shared out in proportion to the masses, so
    each octave is hit with probability (its share)/256. The tables give the float32 exponent
    field's low bit (as bit 7 of byte 2) and high seven bits (as bits 0-6 of byte 3).
    """
    counts = [round(m * 256) for m in masses]
    counts[-1] += 256 - sum(counts)  # rounding error goes to the smallest octave
    if counts[-1] < 0:
        raise ValueError(f"octave masses {masses} do not round to 256 byte values")
    exponents = []
    for k, count in enumerate(counts):
        # Biased float32 exponent of 2**(top_exponent - k - 1), the octave's lower end.
        exponents += [127 + top_exponent - k - 1] * count
    low_bit = bytes((e & 1) << 7 for e in exponents)
    high_bits = bytes(e >> 1 for e in exponents)
    return low_bit, high_bits


@functools.lru_cache(maxsize=16)
def repeated_word(word, count):
    """Return the integer whose little-endian bytes are the 32-bit `word` repeated `count` times."""
    return int.from_bytes(word.to_bytes(4, "little") * count, "little")


def octave_generator(masses, top_exponent, signed):
    """Return a generator of floats with the given octave masses, uniform inside each octave.

    Per element it draws four random bytes for the mantissa and sign and one byte for the
    octave, then assembles the float32 bit pattern over the whole chunk at once.
    """
    low_bit_table, high_bits_table = octave_table(masses, top_exponent)
    keep_mask = 0x807FFFFF if signed else 0x007FFFFF  # sign (optional) and 23 mantissa bits

    def generate(rng, count):
        mask = repeated_word(keep_mask, count)
        mantissa = int.from_bytes(rng.randbytes(4 * count), "little") & mask
        octave = rng.randbytes(count)
        exponent = bytearray(4 * count)
        exponent[2::4] = octave.translate(low_bit_table)
        exponent[3::4] = octave.translate(high_bits_table)
        return (mantissa | int.from_bytes(exponent, "little")).to_bytes(4 * count, "little")

    return generate


def uniform_generator(fan_in):
    """Uniform on [-b, b], b the power of two nearest to 1/sqrt(fan_in)."""
    top_exponent = round(math.log2(1.0 / math.sqrt(fan_in)))
    # For U(0, 2**t), octave k (counted down from the top) has mass 2**-(k+1).
    masses = [2.0 ** -(k + 1) for k in range(OCTAVES)]
    return octave_generator(masses, top_exponent, signed=True)


def normal_like_generator(std):
    """Normal-like with the given standard deviation (octave masses of N(0, std))."""
    top_exponent = math.ceil(math.log2(4 * std))  # 4 sigma: mass above it is 6e-5 < 1/256

    def mass_below(x):
        return math.erf(x / (std * math.sqrt(2.0)))  # P(|X| < x)

    masses = []
    for k in range(OCTAVES):
        upper = 2.0 ** (top_exponent - k)
        lower = upper / 2 if k < OCTAVES - 1 else 0.0
        masses.append(mass_below(upper) - mass_below(lower))
    masses[0] += 1.0 - mass_below(2.0 ** top_exponent)
    return octave_generator(masses, top_exponent, signed=True)


def constant_generator(value):
    pattern = struct.pack("<f", value)

    def generate(rng, count):
        return pattern * count

    return generate


def row_pattern_generator(row):
    """Repeat one row of values (for Mamba-1's A_log, the same in every channel)."""
    pattern = struct.pack(f"<{len(row)}f", *row)

    def generate(rng, count):
        if count % len(row):
            raise ValueError("tensor size is not a multiple of the row pattern")
        return pattern * (count // len(row))

    return generate


def per_element_generator(draw):
    """Call draw(rng) once per element; only for tensors of a few thousand elements."""

    def generate(rng, count):
        return struct.pack(f"<{count}f", *(draw(rng) for _ in range(count)))

    return generate


def draw_dt_bias(rng):
    """softplus^-1(dt) with dt log-uniform in [1e-3, 0.1], as Mamba initialises dt_proj.bias."""
    dt = math.exp(rng.uniform(math.log(1e-3), math.log(0.1)))
    return dt + math.log(-math.expm1(-dt))


def draw_mamba2_a_log(rng):
    return math.log(rng.uniform(1.0, 16.0))


# ---- Tensor lists -----------------------------------------------------------------------


def mamba1_layer_tensors(shape, prefix):
    d_model, d_state, d_conv = shape["d_model"], shape["d_state"], shape["d_conv"]
    d_inner = shape["expand"] * d_model
    dt_rank = shape["dt_rank"]
    mixer = prefix + "mixer."
    return [
        (prefix + "norm.weight", [d_model], constant_generator(1.0)),
        (mixer + "in_proj.weight", [2 * d_inner, d_model], uniform_generator(d_model)),
        (mixer + "conv1d.weight", [d_inner, 1, d_conv], uniform_generator(d_conv)),
        (mixer + "conv1d.bias", [d_inner], uniform_generator(d_conv)),
        (mixer + "x_proj.weight", [dt_rank + 2 * d_state, d_inner], uniform_generator(d_inner)),
        (mixer + "dt_proj.weight", [d_inner, dt_rank], uniform_generator(dt_rank)),
        (mixer + "dt_proj.bias", [d_inner], per_element_generator(draw_dt_bias)),
        (mixer + "A_log", [d_inner, d_state],
         row_pattern_generator([math.log(n + 1) for n in range(d_state)])),
        (mixer + "D", [d_inner], constant_generator(1.0)),
        (mixer + "out_proj.weight", [d_model, d_inner], uniform_generator(d_inner)),
    ]


def mamba2_layer_tensors(shape, prefix):
    d_model, d_state, d_conv = shape["d_model"], shape["d_state"], shape["d_conv"]
    d_inner = shape["expand"] * d_model
    ngroups = shape["ngroups"]
    nheads = d_inner // shape["headdim"]
    conv_dim = d_inner + 2 * ngroups * d_state
    mixer = prefix + "mixer."
    return [
        (prefix + "norm.weight", [d_model], constant_generator(1.0)),
        (mixer + "in_proj.weight", [2 * d_inner + 2 * ngroups * d_state + nheads, d_model],
         uniform_generator(d_model)),
        (mixer + "conv1d.weight", [conv_dim, 1, d_conv], uniform_generator(d_conv)),
        (mixer + "conv1d.bias", [conv_dim], uniform_generator(d_conv)),
        (mixer + "dt_bias", [nheads], per_element_generator(draw_dt_bias)),
        (mixer + "A_log", [nheads], per_element_generator(draw_mamba2_a_log)),
        (mixer + "D", [nheads], constant_generator(1.0)),
        (mixer + "norm.weight", [d_inner], constant_generator(1.0)),
        (mixer + "out_proj.weight", [d_model, d_inner], uniform_generator(d_inner)),
    ]


def model_tensors(shape):
    """Return (name, shape, generator) for every tensor, in file order."""
    tensors = [("backbone.embedding.weight", [padded_vocab(shape), shape["d_model"]],
                normal_like_generator(0.02))]
    layer_tensors = mamba1_layer_tensors if shape["layer"] == "Mamba1" else mamba2_layer_tensors
    for i in range(shape["n_layer"]):
        tensors += layer_tensors(shape, f"backbone.layers.{i}.")
    tensors.append(("backbone.norm_f.weight", [shape["d_model"]], constant_generator(1.0)))
    return tensors


# ---- safetensors writer -----------------------------------------------------------------


def safetensors_header(tensors):
    """Return the header bytes: 8-byte length, then JSON padded with spaces to 8 bytes."""
    entries = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dims, _ in tensors:
        size = 4 * math.prod(dims)
        entries[name] = {"dtype": "F32", "shape": dims, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def write_tensor(out, name, dims, generate, seed):
    rng = random.Random(f"{seed}:{name}")  # a str seed is hashed with SHA-512: stable across runs
    remaining = math.prod(dims)
    while remaining:
        count = min(remaining, CHUNK_ELEMENTS)
        out.write(generate(rng, count))
        remaining -= count


def write_checkpoint(shape_name, directory, seed, progress):
    shape = SHAPES[shape_name]
    tensors = model_tensors(shape)
    total_bytes = 4 * sum(math.prod(dims) for _, dims, _ in tensors)
    os.makedirs(directory, exist_ok=True)
    free_bytes = shutil.disk_usage(directory).free
    if free_bytes < total_bytes + (64 << 20):
        sys.exit(f"error: {directory} has {free_bytes / 1e9:.2f} GB free; {shape_name} needs "
                 f"{total_bytes / 1e9:.2f} GB. Choose a directory on a larger file system.")

    # Write under temporary names and rename at the end, so an interrupted run never leaves a
    # directory that looks complete.
    weights_path = os.path.join(directory, "model.safetensors")
    config_path = os.path.join(directory, "config.json")
    start = time.monotonic()
    with open(weights_path + ".partial", "wb") as out:
        out.write(safetensors_header(tensors))
        written = 0
        shown_percent = -1
        for name, dims, generate in tensors:
            write_tensor(out, name, dims, generate, seed)
            written += 4 * math.prod(dims)
            percent = 100 * written // total_bytes
            if progress and percent != shown_percent:
                print(f"\r{percent:3d}% of {total_bytes / 1e9:.2f} GB", end="",
                      file=sys.stderr, flush=True)
                shown_percent = percent
    if progress:
        print(file=sys.stderr)
    with open(config_path + ".partial", "w") as out:
        json.dump(config_json(shape), out, indent=2)
        out.write("\n")
    os.replace(weights_path + ".partial", weights_path)
    os.replace(config_path + ".partial", config_path)

    parameters = total_bytes // 4
    print(f"wrote {shape_name} to {directory}: {parameters:,} parameters, "
          f"{total_bytes / 1e9:.2f} GB of F32 weights in {time.monotonic() - start:.1f} s",
          file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(
        description="Write a seeded random Mamba checkpoint (config.json + model.safetensors, "
                    "F32, state-spaces names, tied embeddings) in the shape of a published "
                    "model. The weights are random: use it to measure speed and memory at "
                    "real size, not to judge output quality. Write it outside the repository.",
        epilog="Sizes: mamba-130m 0.52 GB, mamba-1.4b 5.5 GB, mamba2-130m 0.52 GB, "
               "mamba2-1.3b 5.4 GB. Example: %(prog)s mamba-130m /tmp/ckpt/mamba-130m")
    parser.add_argument("shape", choices=sorted(SHAPES), help="published model whose shape to copy")
    parser.add_argument("directory", help="output directory (created if missing; existing "
                                          "config.json and model.safetensors are replaced)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed; the same seed gives the same bytes (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line on stderr, not the progress")
    args = parser.parse_args()
    write_checkpoint(args.shape, args.directory, args.seed, progress=not args.quiet)


if __name__ == "__main__":
    main()
