"""Writes the ONNX backend suite's node test cases for the given operators as ONNX test-case
directories (model.onnx + test_data_set_K/input_J.pb, output_J.pb), the layout that
`harness conformance --onnx-tests DIR` reads. With OPs given, only cases made of those
operators are written.

    python harness/python/onnx_node_cases.py OUT_DIR [OP ...]

The onnx wheel ships the generators of these cases but not the data; this script runs the
generators (onnx.backend.test.case.node) and writes every case whose tensors are plain
tensors. harness/tests/python.rs uses it to check the f64 oracle against the suite.
"""

import os
import sys

from onnx import numpy_helper
from onnx.backend.test.case import node


def main():
    out = sys.argv[1]
    ops = set(sys.argv[2:])
    written = 0
    for case in node.collect_testcases(None):
        op_types = {n.op_type for n in case.model.graph.node}
        if ops and not op_types <= ops:
            continue
        graph = case.model.graph
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
                    t = numpy_helper.from_array(value, infos[j].name)
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(t.SerializeToString())
        written += 1
    print(f"wrote {written} cases to {out}")


if __name__ == "__main__":
    main()
