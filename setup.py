"""Builds the C frame hook (jit._C); everything else is declared in pyproject.toml."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "jit._C",
            sources=["jit/csrc/eval_frame.c", "jit/csrc/cache_entry.c", "jit/csrc/module.c"],
            depends=["jit/csrc/jit_c.h", "jit/csrc/compat.h"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
        )
    ]
)
