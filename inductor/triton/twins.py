"""Generated kernels that are twins: the same code over other buffers, compiled once.

A model's repeated layers give the same fused kernel once per layer (a 4-layer GPT: 14 generated kernels, 5
distinct), named after each layer's buffers. Triton compiles every @triton.jit function on its own, and much of
a compile is its Python front end, which holds the GIL, so parallel threads do not hide repeats: 14 kernels cost
1.4 s of the GPT's first call on the H100. Each distinct kernel is now generated and compiled once and launched
at every call site; its parameters keep the first call site's names and a comment says where else it runs.

Two kernels are twins when their sources agree up to the kernel's and its parameters' names and comment lines,
and they launch alike: same mode, sizes, launch config and argument dtypes."""
import re

_DEF = re.compile(r"^def (\w+)\((.*)\):$", re.M)
_WORD = re.compile(r"\b\w+\b")


def twin_key(ks) -> tuple:
    """What two interchangeable generated kernels (KernelSource, arg_dtypes set) have in common."""
    m = _DEF.search(ks.source)
    if m is None:  # not a one-line `def` (not what triton/codegen.py writes): a kernel of its own
        return ("unmatched", ks.name)
    params = [p.split(":")[0].strip() for p in m.group(2).split(",") if p.strip()]
    rename = {p: f"arg{i}" for i, p in enumerate(params)}
    rename[m.group(1)] = "kernel"
    code = "\n".join(line for line in ks.source.splitlines() if not line.lstrip().startswith("#"))
    code = _WORD.sub(lambda w: rename.get(w.group(0), w.group(0)), code)
    return (code, ks.mode, ks.xnumel, ks.rnumel, ks.ynumel, tuple(sorted(ks.config.items())),
            tuple(str(d) for d in ks.arg_dtypes))


def note_call_sites(source: str, n: int) -> str:
    """`source` with a comment after its `def` line saying it runs at `n` call sites."""
    m = _DEF.search(source)
    note = f"\n    # launched at {n} call sites: the same code over other buffers (parameters named after the first)"
    return source[:m.end()] + note + source[m.end():]
