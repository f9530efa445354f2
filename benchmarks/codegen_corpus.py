"""Dump the Triton backend's generated modules for a corpus of graphs, to compare two versions of the backend:
a refactoring that must not change generated code shows as `diff -r` printing nothing.

    python benchmarks/codegen_corpus.py OUT_DIR [pytest args...]   # default: tests/inductor/triton
    diff -r OUT_BEFORE OUT_AFTER

The corpus: every graph the Triton tests compile (tests/inductor/triton, which runs the op_cases.py lists too),
under TRITON_INTERPRET=1 without a GPU, and the GPT of benchmarks/models in float32 and bfloat16, generated with
and without autotuning (the latter writes fused matmul call sites). Each generated module is one file, named after
the test and its rank within it, holding the module source and then each kernel's launch record (KernelSource
without its source), so a change to what the host launches shows as well as a change of code."""
import dataclasses
import os
import re
import sys
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Recorder:
    """Wraps triton/backend.generate_triton: each generated module written to OUT_DIR under the current name."""

    def __init__(self, out: Path):
        self.out, self.name, self.count = out, "setup", {}

    def install(self):
        from framejit.inductor.triton import backend
        original = backend.generate_triton

        def recorded(*args, **kwargs):
            generated = original(*args, **kwargs)
            if generated is not None:
                self.write(generated[1], generated[2])
            return generated
        backend.generate_triton = recorded

    def write(self, source: str, kernels: list):
        n = self.count[self.name] = self.count.get(self.name, 0) + 1
        records = []
        for ks in kernels:
            fields = {f.name: getattr(ks, f.name) for f in dataclasses.fields(ks) if f.name != "source"}
            records.append("# " + repr(fields))
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)[:180]
        (self.out / f"{stem}.{n}.py").write_text(source + "\n# ---- launch records\n" + "\n".join(records) + "\n")

    # pytest plugin hooks: the test being run names the modules it generates
    def pytest_runtest_setup(self, item):
        self.name = item.nodeid


def gpt_corpus(recorder: Recorder):
    import jit
    from benchmarks.models.gpt import GPT, GPTConfig
    from framejit.inductor.triton import backend as triton_steps
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for dtype in (torch.float32, torch.bfloat16):
        for autotune in (False, True):
            recorder.name = f"gpt_{str(dtype)[6:]}_autotune{int(autotune)}"
            jit.reset()
            config = GPTConfig(vocab_size=96, block_size=16, n_layer=2, n_head=2, n_embd=32)
            model = GPT(config).to(device, dtype).eval()

            def backend(gm, example_inputs):
                triton_steps.build(gm, example_inputs, autotune)  # generated and recorded, not run
                return gm
            backend.dynamic_sizes = True
            with torch.no_grad():
                jit.compile(model, backend=backend)(torch.randint(0, 96, (2, 16), device=device))


def main():
    import pytest
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(out)
    recorder.install()
    gpt_corpus(recorder)
    args = sys.argv[2:] or ["tests/inductor/triton"]
    os.chdir(ROOT)
    code = pytest.main(["-q", "-p", "no:cacheprovider", *args], plugins=[recorder])
    print(f"{len(list(out.iterdir()))} generated modules in {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
