"""Name the code between modules (a parent's forward) where an error appears that no module made."""
from __future__ import annotations


def _parent_graph(module):
    """The parent's forward as an fx graph with every child module a leaf; None if it cannot be traced."""
    import torch

    graph = getattr(module, "graph", None)
    if isinstance(graph, torch.fx.Graph):  # an unflattened .pt2 module already is one
        return graph

    class LeafTracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return True

    try:
        return LeafTracer().trace(module)
    except Exception:  # data-dependent control flow and the like: no name better than the fallback
        return None


def op_name(target) -> str:
    """``add`` for ``operator.add``, ``torch.add``, ``aten.add.Tensor`` and the method ``"add"``."""
    text = str(target)
    if text.startswith("aten."):
        return text.split(".")[1]
    return getattr(target, "__name__", text).split(".")[-1]


def describe_glue(root, parent: str, child: str | None,
                  output: str | None = None) -> tuple[str, str, tuple[str, ...]]:
    """``(name, op, constants)`` for the code in ``parent``'s forward that computes ``child``'s input
    (the model output ``output`` when ``child`` is None; ``forward:output`` where it is the only one or
    unnamed, else ``forward:NAME``): the parameters it reads name it (``pos`` for ``x + self.pos``)."""
    fallback = (f"{child}:input" if child else f"{parent or 'forward'}:{output or 'output'}", "glue", ())
    try:
        module = root.get_submodule(parent) if parent else root
    except AttributeError:
        return fallback
    graph = _parent_graph(module)
    if graph is None:
        return fallback
    local = child[len(parent) + 1:] if child and parent else child
    if child is None:
        target = next((n for n in graph.nodes if n.op == "output"), None)
    else:
        target = next((n for n in graph.nodes if n.op == "call_module" and n.target == local), None)
    if target is None:
        return fallback
    attrs, ops, seen, queue = [], [], set(), list(target.all_input_nodes)
    while queue:
        node = queue.pop(0)
        if node in seen or node.op in ("placeholder", "call_module"):
            continue
        seen.add(node)
        if node.op == "get_attr":
            attrs.append(str(node.target))
        elif node.op in ("call_function", "call_method"):
            ops.append(op_name(node.target))
        queue.extend(node.all_input_nodes)
    if not attrs and not ops:
        return fallback
    prefix = f"{parent}." if parent else ""
    name = prefix + (attrs[0] if attrs else (ops[-1] if ops else "glue"))
    op = "+".join(dict.fromkeys(reversed(ops))) or "glue"
    return name, op, tuple(prefix + a for a in attrs)
