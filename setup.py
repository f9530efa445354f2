"""Builds the C frame hook (jit._C) and the Triton kernel launcher (inductor.runtime._launch); everything else is
declared in pyproject.toml."""
import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "jit._C",
            sources=["jit/csrc/eval_frame.c", "jit/csrc/cache_entry.c", "jit/csrc/module.c"],
            depends=["jit/csrc/jit_c.h", "jit/csrc/compat.h"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        Extension(
            "inductor.runtime._launch",
            sources=["inductor/runtime/csrc/launch.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall"],
            libraries=["dl"] if sys.platform.startswith("linux") else [],
        ),
    ]
)
