"""Our own program generator for differential testing: seeded random Python functions (tensor ops over every
dtype, views, in-place writes, exceptions, control flow, containers, closures, graph breaks), each run eagerly and
compiled, compared strictly, and shrunk to a few lines when they disagree.

program.py   the program as data (expressions, statements, inputs, calls) and its source text
ops.py       the table of operations programs are made of
generator.py seeded generation, every statement checked by running the program so far
statements.py statement kinds (assignments, in-place writes, if, for, closures, try, print)
compare.py   what "the same result" means (dtype tolerances, NaN, aliasing by memory)
oracle.py    eager vs compiled, call by call: values, mutations, aliasing, stdout, exceptions, internal errors
minimize.py  shrink a failing program while its failure category persists
cli.py       python -m tests.fuzz
"""
