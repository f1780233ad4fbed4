#!/usr/bin/env python3
"""Plain PyTorch Mamba-1 and Mamba-2 language models, as a training-speed baseline.

The model follows the state-spaces/mamba reference math in float32 on the CPU, with no
custom kernels: the Mamba-1 selective scan is a loop over time, and the Mamba-2 scan is the
chunked state-space-dual (SSD) form written with einsum. Parameter names match the
state-spaces checkpoints, so a model.safetensors written by the reference loads directly.

Subcommands:
  check DIR    load DIR/model.safetensors, compare the logits with DIR/golden.safetensors
               and, where DIR/golden_grads.safetensors exists, the loss and gradients on
               its input_ids; print the largest differences.
  bench CONFIG train on random tokens (forward, backward, AdamW step) and print tokens/s.

Supported configs: Mamba1 and Mamba2 layers, tied or untied embeddings, optional in/out
projection biases. Attention layers, gated MLPs (d_intermediate > 0), LayerNorm instead of
RMSNorm and Mamba-2's d_ssm < d_inner are rejected.
"""

import argparse
import json
import math
import struct
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-5


class ModelConfig:
    """The fields of a state-spaces config.json that this model uses."""

    def __init__(self, raw):
        if raw.get("d_intermediate", 0) or raw.get("attn_layer_idx"):
            raise ValueError("gated MLPs and attention layers are not supported: set "
                             "d_intermediate to 0 and attn_layer_idx to []")
        if not raw.get("rms_norm", True):
            raise ValueError("rms_norm=false (LayerNorm) is not supported")
        ssm = raw.get("ssm_cfg", {})
        self.layer = ssm.get("layer", "Mamba1")
        if self.layer not in ("Mamba1", "Mamba2"):
            raise ValueError(f"invalid ssm_cfg.layer {self.layer!r}, expected Mamba1 or Mamba2")
        if ssm.get("d_ssm") is not None:
            raise ValueError("Mamba-2 d_ssm is not supported: remove it so d_ssm = d_inner")

        self.d_model = raw["d_model"]
        self.n_layer = raw["n_layer"]
        self.vocab_size = raw["vocab_size"]
        multiple = raw.get("pad_vocab_size_multiple", 8)
        self.padded_vocab_size = -(-self.vocab_size // multiple) * multiple
        self.tie_embeddings = raw.get("tie_embeddings", True)

        self.expand = ssm.get("expand", 2)
        self.d_inner = self.expand * self.d_model
        self.d_conv = ssm.get("d_conv", 4)
        self.bias = ssm.get("bias", False)
        self.conv_bias = ssm.get("conv_bias", True)

        if self.layer == "Mamba1":
            self.d_state = ssm.get("d_state", 16)
            dt_rank = ssm.get("dt_rank", "auto")
            self.dt_rank = -(-self.d_model // 16) if dt_rank == "auto" else dt_rank
        else:
            self.d_state = ssm.get("d_state", 128)
            self.headdim = ssm.get("headdim", 64)
            self.ngroups = ssm.get("ngroups", 1)
            self.chunk_size = ssm.get("chunk_size", 256)
            self.n_heads = self.d_inner // self.headdim


def rms_norm(v, weight):
    return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + NORM_EPS) * weight


def causal_depthwise_conv(x, conv):
    """Apply a depthwise conv with K-1 zeros on the left. x: [B, L, C] -> [B, L, C]."""
    length = x.shape[1]
    out = F.conv1d(x.transpose(1, 2), conv.weight, conv.bias,
                   padding=conv.kernel_size[0] - 1, groups=conv.groups)
    return out[..., :length].transpose(1, 2)


def inverse_softplus_dt(count, dt_min=1e-3, dt_max=0.1, dt_floor=1e-4):
    """Draw dt log-uniform in [dt_min, dt_max] and return softplus^-1(dt), the reference's
    dt bias initialization."""
    dt = torch.exp(torch.rand(count) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    dt = dt.clamp(min=dt_floor)
    return dt + torch.log(-torch.expm1(-dt))


class Mamba1Mixer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        E, N, R = c.d_inner, c.d_state, c.dt_rank
        self.in_proj = nn.Linear(c.d_model, 2 * E, bias=c.bias)
        self.conv1d = nn.Conv1d(E, E, c.d_conv, groups=E, bias=c.conv_bias)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, c.d_model, bias=c.bias)
        with torch.no_grad():
            bound = R ** -0.5
            self.dt_proj.weight.uniform_(-bound, bound)
            self.dt_proj.bias.copy_(inverse_softplus_dt(E))

    def forward(self, u):
        c = self.c
        x, z = self.in_proj(u).split([c.d_inner, c.d_inner], dim=-1)
        x = F.silu(causal_depthwise_conv(x, self.conv1d))
        delta, B, C = self.x_proj(x).split([c.dt_rank, c.d_state, c.d_state], dim=-1)
        # The reference adds dt_proj.bias inside the scan; the sum is the same.
        dt = F.softplus(self.dt_proj(delta))                       # [B, L, E]
        A = -torch.exp(self.A_log)                                 # [E, N]
        decay = torch.exp(dt.unsqueeze(-1) * A)                    # [B, L, E, N]
        drive = (dt * x).unsqueeze(-1) * B.unsqueeze(2)            # [B, L, E, N]
        h = torch.zeros_like(decay[:, 0])
        states = []
        # unbind, not decay[:, t]: the backward of each indexing op would write a full-size
        # zero tensor, which makes the backward pass quadratic in L.
        for decay_t, drive_t in zip(decay.unbind(1), drive.unbind(1)):
            h = decay_t * h + drive_t
            states.append(h)
        y = torch.einsum("blen,bln->ble", torch.stack(states, dim=1), C)
        y = y + self.D * x
        return self.out_proj(y * F.silu(z))


def segment_sums(a):
    """Return s[..., i, j] = a[..., j+1] + ... + a[..., i] for j <= i, and -inf above the
    diagonal. Summing the masked copies directly, instead of subtracting two cumulative
    sums, avoids the rounding error of a difference of two large sums."""
    T = a.shape[-1]
    strictly_lower = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), -1)
    repeated = a.unsqueeze(-1).expand(*a.shape, T).masked_fill(~strictly_lower, 0)
    sums = torch.cumsum(repeated, dim=-2)
    lower = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), 0)
    return sums.masked_fill(~lower, float("-inf"))


def ssd_chunked(x, dt, A, B, C, chunk):
    """Run the Mamba-2 scan in chunks of `chunk` steps, with zero initial state.

    x: [b, L, H, P]; dt: [b, L, H] (after softplus); A: [H]; B, C: [b, L, H, N] (already
    expanded from groups to heads). Returns y: [b, L, H, P] without the D skip.
    Inside a chunk the output is the masked quadratic (attention-like) form. Across chunks
    one state per chunk is carried by a loop over the chunks.
    """
    b, L, H, P = x.shape
    pad = (-L) % chunk
    if pad:
        # dt = 0 on the padding, so those steps neither decay nor feed the state.
        x, B, C = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (x, B, C))
        dt = F.pad(dt, (0, 0, 0, pad))
    n_chunks = x.shape[1] // chunk
    x, B, C = (t.reshape(b, n_chunks, chunk, H, t.shape[-1]) for t in (x, B, C))
    dt = dt.reshape(b, n_chunks, chunk, H)
    x_dt = x * dt.unsqueeze(-1)
    log_decay = (dt * A).permute(0, 3, 1, 2)                      # [b, H, c, T]
    log_decay_cum = torch.cumsum(log_decay, dim=-1)

    # Within each chunk: y_t = sum_{s<=t} (C_t . B_s) exp(sum_{r=s+1..t} dt_r A) dt_s x_s.
    mask = torch.exp(segment_sums(log_decay))                     # [b, H, c, T, T]
    y = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", C, B, mask, x_dt)

    # Each chunk's own contribution to the state at its end.
    to_end = torch.exp(log_decay_cum[..., -1:] - log_decay_cum)   # [b, H, c, T]
    chunk_states = torch.einsum("bclhn,bhcl,bclhp->bchpn", B, to_end, x_dt)

    # The state entering each chunk, carried across chunks.
    chunk_decay = torch.exp(log_decay_cum[..., -1])               # [b, H, c]
    state = torch.zeros_like(chunk_states[:, 0])
    entering = []
    for decay_i, states_i in zip(chunk_decay.unbind(2), chunk_states.unbind(1)):
        entering.append(state)
        state = state * decay_i[:, :, None, None] + states_i
    entering = torch.stack(entering, dim=1)                       # [b, c, H, P, N]

    from_start = torch.exp(log_decay_cum)                         # [b, H, c, T]
    y = y + torch.einsum("bclhn,bchpn,bhcl->bclhp", C, entering, from_start)
    return y.reshape(b, n_chunks * chunk, H, P)[:, :L]


class Mamba2Mixer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        E, G, N, H = c.d_inner, c.ngroups, c.d_state, c.n_heads
        conv_channels = E + 2 * G * N
        self.in_proj = nn.Linear(c.d_model, 2 * E + 2 * G * N + H, bias=c.bias)
        self.conv1d = nn.Conv1d(conv_channels, conv_channels, c.d_conv, groups=conv_channels,
                                bias=c.conv_bias)
        self.dt_bias = nn.Parameter(inverse_softplus_dt(H))
        self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(H))
        self.norm = nn.Module()
        self.norm.weight = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, c.d_model, bias=c.bias)

    def forward(self, u):
        c = self.c
        E, G, N, H, P = c.d_inner, c.ngroups, c.d_state, c.n_heads, c.headdim
        b, L, _ = u.shape
        z, xBC, dt = self.in_proj(u).split([E, E + 2 * G * N, H], dim=-1)
        xBC = F.silu(causal_depthwise_conv(xBC, self.conv1d))
        x, B, C = xBC.split([E, G * N, G * N], dim=-1)
        # Consecutive heads share a group: head h reads group h // (H / G).
        B = B.reshape(b, L, G, N).repeat_interleave(H // G, dim=2)
        C = C.reshape(b, L, G, N).repeat_interleave(H // G, dim=2)
        x = x.reshape(b, L, H, P)
        dt = F.softplus(dt + self.dt_bias)
        A = -torch.exp(self.A_log)
        y = ssd_chunked(x, dt, A, B, C, c.chunk_size)
        y = (y + self.D[:, None] * x).reshape(b, L, E)
        # Gated RMSNorm: gate first, then normalize each group of E / G channels.
        v = (y * F.silu(z)).reshape(b, L, G, E // G)
        v = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + NORM_EPS)
        return self.out_proj(v.reshape(b, L, E) * self.norm.weight)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.Module()
        self.norm.weight = nn.Parameter(torch.ones(c.d_model))
        self.mixer = Mamba1Mixer(c) if c.layer == "Mamba1" else Mamba2Mixer(c)


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embedding = nn.Embedding(c.padded_vocab_size, c.d_model)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm_f = nn.Module()
        self.norm_f.weight = nn.Parameter(torch.ones(c.d_model))


class MambaLM(nn.Module):
    """The language model: embedding, pre-norm residual mixer layers, final norm, LM head."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.backbone = Backbone(c)
        if not c.tie_embeddings:
            self.lm_head = nn.Linear(c.d_model, c.padded_vocab_size, bias=False)
        with torch.no_grad():
            self.backbone.embedding.weight.normal_(0, 0.02)
            for layer in self.backbone.layers:
                # The reference re-draws out_proj with the default init, then divides by
                # sqrt(n_layer).
                layer.mixer.out_proj.reset_parameters()
                layer.mixer.out_proj.weight /= math.sqrt(c.n_layer)

    def forward(self, ids):
        residual = self.backbone.embedding(ids)
        hidden = torch.zeros_like(residual)
        for layer in self.backbone.layers:
            residual = residual + hidden
            hidden = layer.mixer(rms_norm(residual, layer.norm.weight))
        out = rms_norm(residual + hidden, self.backbone.norm_f.weight)
        head = self.backbone.embedding.weight if self.c.tie_embeddings else self.lm_head.weight
        return out @ head.t()

    def loss(self, ids):
        """Mean next-token cross-entropy over every position but the last, over the padded
        vocabulary."""
        logits = self.forward(ids)[:, :-1]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


SAFETENSORS_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64,
                      "I32": torch.int32}


def read_safetensors(path):
    """Return {name: tensor} from a safetensors file (copies, little-endian host assumed)."""
    data = Path(path).read_bytes()
    header_size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_size])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in SAFETENSORS_DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = (8 + header_size + o for o in info["data_offsets"])
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=SAFETENSORS_DTYPES[info["dtype"]])
        tensors[name] = flat.reshape(info["shape"])
    return tensors


def load_model(checkpoint_dir):
    checkpoint_dir = Path(checkpoint_dir)
    config = ModelConfig(json.loads((checkpoint_dir / "config.json").read_text()))
    model = MambaLM(config)
    weights = read_safetensors(checkpoint_dir / "model.safetensors")
    model.load_state_dict(weights, strict=True)
    return model


def check_logits(model, golden_path):
    """Print the largest logit difference over every sequence of golden.safetensors and
    return whether all are within 1e-5 + 1e-5 * |golden|."""
    golden = read_safetensors(golden_path)
    ok = True
    with torch.no_grad():
        for name in sorted(k for k in golden if k.endswith("input_ids")):
            prefix = name[:-len("input_ids")]
            expected = golden[prefix + "logits"]
            logits = model(golden[name])
            diff = (logits - expected).abs()
            ok = ok and bool((diff <= 1e-5 + 1e-5 * expected.abs()).all())
            print(f"  {prefix}logits {tuple(expected.shape)} max|diff| {diff.max().item():.2e}")
    return ok


def check_golden(args):
    model = load_model(args.dir)
    logits_ok = check_logits(model, Path(args.dir) / "golden.safetensors")
    grads_path = Path(args.dir) / "golden_grads.safetensors"
    if not grads_path.exists():
        print(f"no {grads_path.name}: logits only")
        print("PASS" if logits_ok else "FAIL")
        return 0 if logits_ok else 1
    golden = read_safetensors(grads_path)
    loss = model.loss(golden["input_ids"])
    loss.backward()
    loss_error = abs(loss.item() - golden["loss"].item())
    print(f"loss {loss.item():.8f}  golden {golden['loss'].item():.8f}  |diff| {loss_error:.2e}")

    worst_ratio = 0.0
    for name, param in model.named_parameters():
        expected = golden["grad." + name]
        diff = (param.grad - expected).abs().max().item()
        scale = expected.abs().max().item()
        ratio = diff / scale if scale > 0 else diff
        worst_ratio = max(worst_ratio, ratio)
        print(f"  grad.{name:45s} max|diff| {diff:.2e}  max|golden| {scale:.2e}  ratio {ratio:.2e}")
    print(f"largest max|diff| / max|golden| over all gradients: {worst_ratio:.2e}")
    # Tolerances suggested with the goldens for a float32 engine.
    ok = (logits_ok and loss_error <= 1e-5 * max(1.0, abs(golden["loss"].item()))
          and worst_ratio <= 1e-4)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def bench_training(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = ModelConfig(json.loads(Path(args.config).read_text()))
    model = MambaLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, foreach=True)
    n_params = sum(p.numel() for p in model.parameters())
    n_embedding = model.backbone.embedding.weight.numel()

    def step():
        ids = torch.randint(0, config.vocab_size, (args.batch, args.ctx))
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(ids)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)

    tokens = args.batch * args.ctx
    rates = sorted(tokens / t for t in times)
    median = rates[len(rates) // 2]
    print(f"config: {args.config} ({config.layer}, d_model {config.d_model}, n_layer "
          f"{config.n_layer}, d_state {config.d_state}, vocab {config.padded_vocab_size})")
    print(f"parameters: {n_params / 1e6:.2f}M ({(n_params - n_embedding) / 1e6:.2f}M without "
          f"the embedding)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"ctx {args.ctx}, {args.warmup} warm-up + {args.steps} timed steps, last loss {loss:.3f}")
    print(f"training tokens/s: median {median:.0f}, min {rates[0]:.0f}, max {rates[-1]:.0f} "
          f"(forward + backward + AdamW step)")


def perplexity(args):
    """Print the perplexity of token ids over non-overlapping windows of --ctx tokens, each
    from an empty state and scoring its ctx - 1 next-token predictions, as
    `mambacpp perplexity --ctx N` counts them."""
    torch.set_num_threads(args.threads)
    model = load_model(args.dir)
    text = Path(args.ids).read_text().strip("[] \n").replace(",", " ").split()
    ids = torch.tensor([int(t) for t in text], dtype=torch.long)
    total, count = 0.0, 0
    with torch.no_grad():
        for begin in range(0, len(ids), args.ctx):
            window = ids[begin:begin + args.ctx]
            if len(window) < 2:
                break
            total += model.loss(window.unsqueeze(0)).item() * (len(window) - 1)
            count += len(window) - 1
    print(f"perplexity: {math.exp(total / count):.6f} over {count} tokens (ctx {args.ctx})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="compare logits, loss and gradients with the goldens")
    check.add_argument("dir", help="folder with config.json, model.safetensors, "
                                   "golden.safetensors and optionally golden_grads.safetensors")
    bench = sub.add_parser("bench", help="measure training tokens/s on random tokens")
    bench.add_argument("config", help="state-spaces config.json")
    bench.add_argument("--batch", type=int, default=8, help="sequences per step (default: 8)")
    bench.add_argument("--ctx", type=int, default=256, help="tokens per sequence (default: 256)")
    bench.add_argument("--steps", type=int, default=5, help="timed steps (default: 5)")
    bench.add_argument("--warmup", type=int, default=1, help="untimed steps first (default: 1)")
    bench.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the init and the tokens")
    ppl = sub.add_parser("perplexity", help="perplexity of token ids with a checkpoint, "
                                            "e.g. one written by mambacpp train")
    ppl.add_argument("dir", help="folder with config.json and model.safetensors")
    ppl.add_argument("ids", help="file of token ids separated by commas or spaces")
    ppl.add_argument("--ctx", type=int, default=1024, help="tokens per window (default: 1024)")
    ppl.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    args = parser.parse_args()
    if args.command == "check":
        sys.exit(check_golden(args))
    if args.command == "perplexity":
        perplexity(args)
        return
    bench_training(args)


if __name__ == "__main__":
    main()
