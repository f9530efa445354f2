"""Hugging Face transformers models: eager vs torch.compile vs framejit (`jit.compile(model)`), in one process.

GPT-2 (GPT2LMHeadModel), BERT (BertModel) and Llama (LlamaForCausalLM, grouped-query attention), built from
configs (nothing downloaded) with random weights, timed on an eval-mode forward under torch.no_grad(). Per model:
framejit's graphs and breaks (jit.explain), the first call of each compiled variant (capture + code generation +
kernel builds; both compilers' on-disk caches start empty, in a fresh temporary directory, after a throwaway
compile so one-time imports are not counted), the steady-state time per call (median over interleaved rounds,
harness.Suite: eager, torch.compile and framejit take turns so drift hits them alike), the speed-up over eager
(eager time / variant time: > 1 is faster), and each variant's relative L2 error against eager.

    PYTHONPATH=. .venv/bin/python benchmarks/hf_models.py                    # small models, CPU, float32
    python benchmarks/hf_models.py --device cuda --dtype bfloat16 --realistic
        # GPT-2 small (12 layers, C768) at B8 T1024; a ~0.35B Llama (24 layers, hidden 1024, 16 heads, 8 kv heads,
        # intermediate 2816) at B8 T1024; BERT-base at B16 T512
    ... --only gpt2,llama --rounds 15 --threads 1 --save TAG
        # some models; more rounds; one CPU thread each; also write out/hf-models-TAG.{json,md}
        # (results/hf-models-TAG.{json,md} with --update-results)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Cold caches for both compilers: set before torch and jit read them.
_TMP = tempfile.mkdtemp(prefix="hf-models-")
os.environ.setdefault("FRAMEJIT_CACHE_DIR", os.path.join(_TMP, "framejit"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_TMP, "inductor"))

import torch  # noqa: E402
import transformers  # noqa: E402

import jit  # noqa: E402
from benchmarks import harness  # noqa: E402


# ---- models: a config at each size and the input shape it is timed at --------------------------------------------
@dataclass(frozen=True)
class Workload:
    name: str
    build: Callable[[], torch.nn.Module]
    vocab: int
    batch: int
    seq: int
    size: str  # in words, for the table


def _gpt2(realistic: bool) -> Workload:
    if realistic:  # GPT-2 small: 12 layers, C768, 12 heads, vocab 50257, 124M parameters
        config = transformers.GPT2Config()
        return Workload("gpt2", lambda: transformers.GPT2LMHeadModel(config), config.vocab_size, 8, 1024,
                        "GPT-2 small 12L C768, B8 T1024")
    config = transformers.GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=512, n_positions=128,
                                     bos_token_id=511, eos_token_id=511)  # the default ids lie outside vocab 512
    return Workload("gpt2", lambda: transformers.GPT2LMHeadModel(config), 512, 2, 64, "2L C128, B2 T64")


def _llama(realistic: bool) -> Workload:
    if realistic:  # ~0.35B parameters: 24 layers of 11.7M, plus 2 x 32.8M of embedding and untied LM head
        config = transformers.LlamaConfig(hidden_size=1024, num_hidden_layers=24, intermediate_size=2816,
                                          num_attention_heads=16, num_key_value_heads=8, vocab_size=32000,
                                          max_position_embeddings=2048)
        return Workload("llama", lambda: transformers.LlamaForCausalLM(config), 32000, 8, 1024,
                        "24L H1024 16/8 heads I2816, B8 T1024")
    config = transformers.LlamaConfig(hidden_size=128, num_hidden_layers=2, intermediate_size=352,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                                      max_position_embeddings=128)
    return Workload("llama", lambda: transformers.LlamaForCausalLM(config), 512, 2, 64,
                    "2L H128 4/2 heads, B2 T64")


def _bert(realistic: bool) -> Workload:
    if realistic:  # BERT-base: 12 layers, C768, 12 heads, intermediate 3072, vocab 30522, 110M parameters
        config = transformers.BertConfig()
        return Workload("bert", lambda: transformers.BertModel(config), config.vocab_size, 16, 512,
                        "BERT-base 12L C768, B16 T512")
    config = transformers.BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=4,
                                     intermediate_size=512, vocab_size=512, max_position_embeddings=128)
    return Workload("bert", lambda: transformers.BertModel(config), 512, 2, 64, "2L C128, B2 T64")


WORKLOADS = {"gpt2": _gpt2, "bert": _bert, "llama": _llama}


# ---- measurement -------------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _main_output(out) -> torch.Tensor:
    """logits for a causal LM, last_hidden_state for an encoder: the first field of the ModelOutput."""
    return out[0]


def rel_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    got, ref = got.double(), ref.double()
    return ((got - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def _first_call(fn, ids, sync) -> tuple[float, torch.Tensor]:
    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = _main_output(fn(ids))
    sync()
    return time.perf_counter() - t0, out


def _warm_up_compilers(device: torch.device) -> None:
    """Compile an unrelated function once with each compiler, so first calls below exclude one-time imports (and,
    on a GPU, Triton's and the CUDA context's start-up)."""
    def throwaway(a):
        return (a * 3.0).sum(dim=-1)
    a = torch.randn(8, 8, device=device)
    jit.compile(throwaway)(a)
    torch.compile(throwaway)(a)
    _sync(device)()


def run_one(load: Workload, device: torch.device, dtype: torch.dtype, rounds: int) -> tuple[dict, str]:
    torch.manual_seed(0)
    model = load.build().to(device=device, dtype=dtype).eval()
    ids = torch.randint(0, load.vocab, (load.batch, load.seq), device=device,
                        generator=torch.Generator(device=device).manual_seed(1))
    sync = _sync(device)
    with torch.no_grad():
        exp = jit.explain(model, ids)
        ref = _main_output(model(ids))
        sync()
    variants = {"eager": model, "torch.compile": torch.compile(model), "framejit": jit.compile(model)}
    first, errors = {}, {}
    for label in ("torch.compile", "framejit"):
        first[label], out = _first_call(variants[label], ids, sync)
        errors[label] = rel_error(out, ref)
        del out
    del ref

    t0 = time.perf_counter()
    with torch.no_grad():
        model(ids)
        sync()
    once = time.perf_counter() - t0
    suite = harness.Suite(f"hf-{load.name}")
    for label, fn in variants.items():
        def call(fn=fn):
            fn(ids)
            sync()
        suite.add(label, call)
    with torch.no_grad():
        results = suite.run(calls_per_round=max(1, int(0.02 / max(once, 1e-6))), rounds=rounds, warmup=3)
    by = {r.name: r for r in results}
    eager_ms = by["eager"].ns_per_call / 1e6
    row = {"model": load.name, "size": load.size, "graphs": exp.graph_count, "breaks": exp.graph_break_count,
           "eager_ms": eager_ms}
    for label, key in (("torch.compile", "torch_compile"), ("framejit", "framejit")):
        row[f"{key}_ms"] = by[label].ns_per_call / 1e6
        row[f"{key}_speedup"] = eager_ms / row[f"{key}_ms"]
        row[f"{key}_first_call_s"] = first[label]
        row[f"{key}_rel_err"] = errors[label]
    row["spread"] = {r.name: r.spread for r in results}
    row["break_reasons"] = [str(r) for r in exp.break_reasons]
    detail = f"### {load.name} ({load.size})\n\n" + harness.markdown(
        suite, results, {"rel. error vs eager": {k: f"{v:.1e}" for k, v in errors.items()},
                         "first call": {k: f"{v:.2f} s" for k, v in first.items()}})
    return row, detail


def summary(rows: list[dict], device: torch.device, dtype: torch.dtype) -> str:
    head = ("| model | size | graphs | breaks | eager ms | torch.compile ms | speed-up | framejit ms | speed-up | "
            "first call tc | first call fj | rel. err tc / fj |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['size']} | {r['graphs']} | {r['breaks']} | {r['eager_ms']:.2f} | "
                     f"{r['torch_compile_ms']:.2f} | {r['torch_compile_speedup']:.2f}x | {r['framejit_ms']:.2f} | "
                     f"{r['framejit_speedup']:.2f}x | {r['torch_compile_first_call_s']:.2f} s | "
                     f"{r['framejit_first_call_s']:.2f} s | "
                     f"{r['torch_compile_rel_err']:.1e} / {r['framejit_rel_err']:.1e} |")
    where = f"cpu ({torch.get_num_threads()} torch threads)" if device.type == "cpu" else torch.cuda.get_device_name()
    return (f"{where}, {str(dtype).removeprefix('torch.')}, eval forward under no_grad. Speed-up = eager time / "
            f"variant time (> 1 is faster than eager); median of interleaved rounds. graphs/breaks: framejit's "
            f"(jit.explain).\n\n" + "\n".join(lines))


def save(rows: list[dict], details: list[str], text: str, tag: str) -> str:
    os.makedirs(harness.RESULTS_DIR, exist_ok=True)
    stem = os.path.join(harness.RESULTS_DIR, f"hf-models-{tag}")
    env = harness.environment() | {"transformers": transformers.__version__, "torch_threads": torch.get_num_threads()}
    with open(stem + ".json", "w") as f:
        json.dump({"suite": "hf-models", "environment": env, "rows": rows}, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# hf-models\n\n{json.dumps(env)}\n\n{text}\n\n" + "\n\n".join(details) + "\n")
    return stem


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--realistic", action="store_true", help="full-size models and inputs (for a GPU)")
    parser.add_argument("--only", default="", help="comma-separated model names: " + ",".join(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (eager and torch.compile's C++) and framejit's NumPy code; "
                             "0 leaves the defaults. 1 gives steadier numbers on a busy machine")
    parser.add_argument("--save", default="", metavar="TAG",
                        help="also write out/hf-models-TAG.{json,md} (results/ with --update-results)")
    opts = parser.parse_args()
    device, dtype = torch.device(opts.device), getattr(torch, opts.dtype)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    names = [n for n in opts.only.split(",") if n] or list(WORKLOADS)
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    if opts.threads:
        torch.set_num_threads(opts.threads)
        os.environ["FRAMEJIT_NUMPY_THREADS"] = str(opts.threads)  # read when the first NumPy graph is generated
    transformers.logging.set_verbosity_error()
    _warm_up_compilers(device)
    rows, details = [], []
    for name in names:
        row, detail = run_one(WORKLOADS[name](opts.realistic), device, dtype, opts.rounds)
        rows.append(row)
        details.append(detail)
        print(detail + "\n", flush=True)
        for reason in row["break_reasons"]:
            print(f"  framejit break in {name}: {reason}")
        jit.reset()
        torch._dynamo.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    text = summary(rows, device, dtype)
    print(text)
    if opts.save:
        print("saved", save(rows, details, text, opts.save))


if __name__ == "__main__":
    main()
