"""Builds the C frame hook (jit._C) and the Triton kernel launcher (framejit.inductor.runtime._launch, built
into inductor/runtime/ through pyproject's package-dir mapping) and lists the packages: `jit`, and the internals
under the private namespace framejit. Everything else is declared in pyproject.toml."""
import sys

from setuptools import Extension, find_packages, setup

INTERNALS = ("graph", "guards", "inductor")  # folders at the top of the checkout, packages framejit.<name>

setup(
    packages=["jit", *(f"jit.{p}" for p in find_packages("jit")), "framejit",
              *(f"framejit.{name}" for name in INTERNALS),
              *(f"framejit.{name}.{p}" for name in INTERNALS for p in find_packages(name))],
    ext_modules=[
        Extension(
            "jit._C",
            sources=["jit/csrc/eval_frame.c", "jit/csrc/cache_entry.c", "jit/csrc/module.c"],
            depends=["jit/csrc/jit_c.h", "jit/csrc/compat.h"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        Extension(
            "framejit.inductor.runtime._launch",
            sources=["inductor/runtime/csrc/launch.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall"],
            libraries=["dl"] if sys.platform.startswith("linux") else [],
        ),
    ]
)
