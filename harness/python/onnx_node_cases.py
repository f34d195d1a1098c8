"""Writes the ONNX backend suite's node test cases for the given operators as ONNX test-case
directories (model.onnx + test_data_set_K/input_J.pb, output_J.pb), the layout that
`harness conformance --onnx-tests DIR` reads. With OPs given, only cases made of those
operators are written.

    python harness/python/onnx_node_cases.py OUT_DIR [--rank3] [--pytorch-converted] [OP ...]

--rank3 keeps the cases whose first input has rank 3, the 1D layout [N, C, L].
--pytorch-converted also copies the suite's PyTorch-exported models (shipped as data in the
onnx wheel, opsets 6 and 12) made of the given operators, with the same filter.

The onnx wheel ships the generators of the node cases but not their data; this script runs the
generators (onnx.backend.test.case.node) and writes every case whose tensors are plain
tensors. harness/tests/python.rs uses it to check the f64 oracle against the suite.
"""

import os
import shutil
import sys

import onnx
from onnx import numpy_helper
from onnx.backend.test.case import node


def first_input_rank(graph):
    if not graph.input or not graph.input[0].type.HasField("tensor_type"):
        return None
    return len(graph.input[0].type.tensor_type.shape.dim)


def wanted(graph, ops, rank3):
    op_types = {n.op_type for n in graph.node}
    if ops and not op_types <= ops:
        return False
    return not rank3 or first_input_rank(graph) == 3


def main():
    args = sys.argv[1:]
    rank3 = "--rank3" in args
    pytorch = "--pytorch-converted" in args
    args = [a for a in args if a not in ("--rank3", "--pytorch-converted")]
    out, ops = args[0], set(args[1:])
    written = 0
    for case in node.collect_testcases(None):
        graph = case.model.graph
        if not wanted(graph, ops, rank3):
            continue
        if not all(i.type.HasField("tensor_type") for i in list(graph.input) + list(graph.output)):
            continue
        d = os.path.join(out, case.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for k, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{k}")
            os.makedirs(ds, exist_ok=True)
            for kind, values, infos in (("input", inputs, graph.input), ("output", outputs, graph.output)):
                for j, value in enumerate(values):
                    if isinstance(value, onnx.TensorProto):
                        # Types numpy lacks (float8, int4...) come as TensorProtos.
                        t = onnx.TensorProto()
                        t.CopyFrom(value)
                        t.name = infos[j].name
                    else:
                        t = numpy_helper.from_array(value, infos[j].name)
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(t.SerializeToString())
        written += 1
    if pytorch:
        data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "pytorch-converted")
        for name in sorted(os.listdir(data)):
            model = os.path.join(data, name, "model.onnx")
            if os.path.exists(model) and wanted(onnx.load(model).graph, ops, rank3):
                shutil.copytree(os.path.join(data, name), os.path.join(out, name), dirs_exist_ok=True)
                written += 1
    print(f"wrote {written} cases to {out}")


if __name__ == "__main__":
    main()
