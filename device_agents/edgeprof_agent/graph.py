"""The interpreter's execution graph after delegation, read from its op details.

After ``allocate_tensors()``, a delegate (XNNPACK by default) that took part of the model appears as a ``DELEGATE``
node whose inputs and outputs bound the ops it replaced; those ops stay in the node list but no longer run. From
that we learn, per model and without trusting a log line, whether the delegate applied and to how many ops, and we
can rebuild the execution plan the arena estimate needs.
"""

DELEGATE = "DELEGATE"


class Graph(object):
    def __init__(self, ops, inputs, outputs):
        self.ops = ops  # [{"index", "op_name", "inputs", "outputs"}], inputs/outputs as lists of ints
        self.inputs = inputs
        self.outputs = outputs
        self.delegates = [op for op in ops if op["op_name"] == DELEGATE]
        self.originals = [op for op in ops if op["op_name"] != DELEGATE]
        self.covered = {}  # original op index -> delegate node index
        self._cover()

    def _cover(self):
        """Which delegate node replaced which ops.

        A delegate node's inputs are exactly the tensors its ops read from outside, its outputs exactly those read
        outside it. So, until nothing changes: the producer of a tensor that a replaced op reads, and that is not
        one of the node's inputs, was replaced by the same node (this starts from the node's outputs); and an op
        that reads a tensor made inside a node and not handed out by it runs inside that node too (ops whose
        outputs never leave the delegate, such as ASSIGN_VARIABLE, are found this way).
        """
        producer, readers = {}, {}
        for op in self.originals:
            for t in op["outputs"]:
                if t >= 0:
                    producer[t] = op
            for t in op["inputs"]:
                if t >= 0:
                    readers.setdefault(t, []).append(op)
        for node in self.delegates:
            boundary = set(t for t in node["inputs"] if t >= 0)
            exported = set(t for t in node["outputs"] if t >= 0)
            stack = [("made", t) for t in exported]
            seen = set()

            def take(op, node=node, stack=stack, exported=exported):
                self.covered[op["index"]] = node["index"]
                stack.extend(("made", t) for t in op["inputs"] if t >= 0)
                stack.extend(("read", t) for t in op["outputs"] if t >= 0 and t not in exported)

            while stack:
                while stack:
                    item = stack.pop()
                    if item in seen:
                        continue
                    seen.add(item)
                    kind, tensor = item
                    if kind == "made":  # made inside the node: its producer was replaced
                        op = producer.get(tensor)
                        if tensor not in boundary and op is not None and op["index"] not in self.covered:
                            take(op)
                    else:  # a tensor that never leaves the node: every op reading it was replaced
                        for op in readers.get(tensor, []):
                            if op["index"] not in self.covered:
                                take(op)
                # Every input of the node is read by an op inside it: an input that no replaced op reads, and that
                # one op outside reads, has found that op (an ASSIGN_VARIABLE of a handle made elsewhere).
                inside = set(i for i, n in self.covered.items() if n == node["index"])
                for t in sorted(boundary):
                    if any(op["index"] in inside for op in readers.get(t, [])):
                        continue
                    free = [op for op in readers.get(t, []) if op["index"] not in self.covered]
                    if len(free) == 1:
                        take(free[0])

    def plan(self):
        """Nodes in execution order: each delegate node where its first replaced op was, the other ops as they are."""
        placed = set()
        plan = []
        by_index = dict((op["index"], op) for op in self.ops)
        for op in self.originals:
            node_index = self.covered.get(op["index"])
            if node_index is None:
                plan.append(op)
            elif node_index not in placed:
                placed.add(node_index)
                plan.append(by_index[node_index])
        for node in self.delegates:  # a delegate node that replaced nothing we could trace still runs
            if node["index"] not in placed:
                plan.append(node)
        return plan

    def delegation(self):
        total = len(self.originals)
        taken = len(self.covered)
        return {
            "delegate_nodes": len(self.delegates),
            "ops": total,
            "delegated_ops": taken,
            "undelegated_ops": sorted(set(op["op_name"] for op in self.originals if op["index"] not in self.covered)),
            "fully_delegated": bool(self.delegates) and taken == total,
        }


def read(interpreter):
    """The graph, or None when the runtime does not expose op details (very old runtimes)."""
    details = getattr(interpreter, "_get_ops_details", None)
    if details is None:
        return None
    try:
        ops = [
            {
                "index": int(op["index"]),
                "op_name": str(op["op_name"]),
                "inputs": [int(t) for t in op["inputs"]],
                "outputs": [int(t) for t in op["outputs"]],
            }
            for op in details()
        ]
    except Exception:  # noqa: BLE001 - a private API: when it misbehaves we say we could not see the graph
        return None
    inputs = [int(d["index"]) for d in interpreter.get_input_details()]
    outputs = [int(d["index"]) for d in interpreter.get_output_details()]
    return Graph(ops, inputs, outputs)
