"""Adjacent column loops of a looped kernel fused into one, so independent reductions of one row read it once.

A looped kernel emits one `for roffset in range(0, N, RBLOCK):` loop per reduction (reduce.py), at its top level,
in the order the expressions need them. Two reductions where the second does not read the first's result (a
cross entropy's row max and sum of exponentials beside the plain row sum its label smoothing needs) then walk the
row twice: at 128 KB a row, the second pass comes from memory again. Here the second loop's body joins the first's
where that cannot change a value: it reads nothing the lines between the two loops compute but its own
accumulators' initial values (hoisted above the first loop), neither loop stores, and nothing between the two
stores. Lines of the second body that repeat a line of the first (the column index, its mask, a load of the same
address) are dropped and their names mapped to the first's."""
from __future__ import annotations

import re

_HEADER = re.compile(r"for roffset in range\(")
_ASSIGN = re.compile(r"^((?:[A-Za-z_]\w*\s*,\s*)*[A-Za-z_]\w*)\s*=\s*(?!=)(.*)$")
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
_INIT = re.compile(r"^tl\.full\(\[[A-Z, 0-9]*\], [^,]+, tl\.\w+\)$")  # an accumulator's start: reads nothing
_EFFECTS = ("tl.store", "tl.atomic", "tl.device_assert")


def _parse(lines: list[str]) -> list:
    """Top-level lines as items: a str, or [header, body lines (indent removed)] for a column loop."""
    items: list = []
    for line in lines:
        if line.startswith("    ") and items and isinstance(items[-1], list):
            items[-1][1].append(line[4:])
        elif _HEADER.match(line):
            items.append([line, []])
        else:
            items.append(line)
    return items


def _defs(line: str) -> set[str]:
    m = _ASSIGN.match(line)
    return {n.strip() for n in m.group(1).split(",")} if m else set()


def _uses(line: str) -> set[str]:
    m = _ASSIGN.match(line)
    return set(_NAME.findall(m.group(2) if m else line))


def _pointers(lines, effects: bool) -> set[str]:
    """Pointer parameters stored through (effects) or named at all in `lines`."""
    found = set()
    for line in lines:
        if not effects or any(e in line for e in _EFFECTS):
            found |= {n for n in _NAME.findall(line) if n.endswith("_ptr")}
    return found


def _rename(line: str, names: dict) -> str:
    return _NAME.sub(lambda m: names.get(m.group(0), m.group(0)), line) if names else line


def _join(first: list, second: list, between: list[str]):
    """(inits to hoist, the fused body), or None where fusing could change a value."""
    if any(e in line for line in first + second for e in _EFFECTS):
        return None
    inits = [line for line in between if (m := _ASSIGN.match(line)) and _INIT.match(m.group(2))]
    made = set().union(*(_defs(line) for line in between if line not in inits))
    if any(_uses(line) & made for line in second) or _pointers(between, True) & _pointers(second, False):
        return None
    # a line of the first loop is shared only where its value is one for the whole iteration: it reads values
    # made once in the loop before it, or names neither loop assigns (an accumulator, updated in the loop, is not)
    counts: dict = {}
    for line in first + [line for line in second if line not in first]:
        for n in _defs(line):
            counts[n] = counts.get(n, 0) + 1
    seen, before = {}, set()
    for line in first:
        m, defs = _ASSIGN.match(line), _defs(line)
        if m and len(defs) == 1 and all(n in before or n not in counts for n in _uses(line)) and \
                counts.get(next(iter(defs))) == 1:
            seen.setdefault(m.group(2), next(iter(defs)))
        before |= {n for n in defs if counts.get(n) == 1}
    first_defs = set().union(*(_defs(line) for line in first))
    names: dict = {}
    body = list(first)
    for line in second:
        line = _rename(line, names)
        m = _ASSIGN.match(line)
        if m and line in first and not _defs(line) & _uses(line):  # the same name, value (rindex, rmask)
            continue
        defs = _defs(line)
        if m and m.group(2) in seen and len(defs) == 1 and counts.get(next(iter(defs))) == 1:
            names[next(iter(defs))] = seen[m.group(2)]
            continue
        if defs & first_defs:
            return None  # one name, two values
        body.append(line)
    return inits, body


def fuse_loops(lines: list[str]) -> list[str]:
    """The top-level lines of a looped kernel with each column loop fused into the one before it where legal."""
    items = _parse(lines)
    out: list = []
    last = None  # index in `out` of the last loop
    for item in items:
        if isinstance(item, list) and last is not None and item[0] == out[last][0]:
            between = out[last + 1:]
            joined = _join(out[last][1], item[1], between)
            if joined is not None:
                inits, body = joined
                rest = [line for line in between if line not in inits]
                out = out[:last] + inits + [[out[last][0], body]] + rest
                last += len(inits)
                continue
        if isinstance(item, list):
            last = len(out)
        out.append(item)
    flat = []
    for item in out:
        if isinstance(item, list):
            flat.append(item[0])
            flat += [f"    {line}" for line in item[1]]
        else:
            flat.append(item)
    return flat
