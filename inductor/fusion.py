"""Fusion: decide which FX nodes get their own kernel (a materialized buffer) and which are inlined into their
consumer's expression tree.

Inlining a producer into its only consumer is what fuses a chain of pointwise ops into one kernel, a pointwise
producer into a reduction (the reduction reads the unstored expression) and a reduction into its pointwise
epilogue. A value read by several consumers is stored once rather than recomputed. Views cost nothing (NumPy
strided views), so they never force a buffer; we look through them to find a value's real consumers."""
import torch.fx

FUSIBLE = ("pointwise", "view", "reduction")


def terminal_users(node: torch.fx.Node, kinds: dict) -> list:
    """The consumers of `node`, looking through view nodes (a view that is itself a graph output counts as a
    consumer that needs the value stored)."""
    found = []
    for user in node.users:
        if kinds.get(user) == "view":
            if any(u.op == "output" for u in user.users):
                found.append("stored")
            found.extend(terminal_users(user, kinds))
        else:
            found.append(user)
    return found


def plan_fusion(graph: torch.fx.Graph, kinds: dict) -> set:
    """Nodes whose value must be stored in a buffer. kinds maps each call node to pointwise / view / reduction /
    extern / fallback."""
    stored = set()
    for node in graph.nodes:
        kind = kinds.get(node)
        if kind is None:
            continue
        if any(u.op == "output" for u in node.users):
            stored.add(node)  # an output view is stored as an aliasing view, not copied (see Kernel.is_view)
            continue
        if kind == "scatter":  # an indexed store: a kernel of its own, its operand trees fused into it
            stored.add(node)
            continue
        if kind in ("pointwise", "reduction"):
            users = terminal_users(node, kinds)
            # extern and fallback kernels evaluate their operand trees too, so they may absorb a producer
            if len(users) != 1 or users[0] == "stored" or users[0].op == "output":
                stored.add(node)
    return stored


# The longest chain of ops inlined into one kernel's expression. A loop the trace unrolled makes chains hundreds of
# ops deep (generator seeds 727317, 787521: `acc = acc + acc.float()` 125 times); every code generator walks an
# expression recursively, several Python frames per op, some through C calls, so past a few hundred ops it
# overflows. Such a chain is stored every MAX_FUSED_DEPTH ops: a buffer per 64 ops costs nothing measurable.
MAX_FUSED_DEPTH = 64


def cap_depth(graph: torch.fx.Graph, kinds: dict, stored: set) -> set:
    """`stored` with the fused values that end a chain MAX_FUSED_DEPTH ops deep added."""
    stored = set(stored)
    depth: dict = {}  # fused node -> ops in its expression, counting itself
    for node in graph.nodes:
        if kinds.get(node) not in FUSIBLE:
            continue
        d = 1 + max((depth.get(a, 0) for a in node.all_input_nodes if a not in stored), default=0)
        if d >= MAX_FUSED_DEPTH:
            stored.add(node)
        depth[node] = d
    return stored
