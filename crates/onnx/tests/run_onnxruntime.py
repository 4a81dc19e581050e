"""Checks an ONNX file with onnx.checker (full), runs it in onnxruntime, prints the output.

    python run_onnxruntime.py MODEL.onnx INPUT.json

INPUT is a list of rows (fed to the model's first input), or an object mapping input
names to lists of rows (one entry per input of a several-input model). Each row is one
sample's values in row-major (channels-last) order; they are reshaped to that input's
declared sample shape. Prints {"output": [[...], ...] (one flat row per sample),
"onnxruntime": version, "onnx": version} as JSON.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime


def feed(graph_input, rows):
    """The rows as the array `graph_input` declares: its sample shape, int64 or float32."""
    tensor = graph_input.type.tensor_type
    sample = [d.dim_value for d in tensor.shape.dim[1:]]
    # Token ids (an Embedding reads them) are int64; everything else float32.
    ids = tensor.elem_type == onnx.TensorProto.INT64
    return np.asarray(rows, dtype=np.int64 if ids else np.float32).reshape([-1] + sample)


def main():
    model_path, input_path = sys.argv[1], sys.argv[2]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    data = json.load(open(input_path))
    if not isinstance(data, dict):
        data = {model.graph.input[0].name: data}
    declared = {i.name: i for i in model.graph.input}
    if set(data) != set(declared):
        sys.exit(f"inputs {sorted(data)} given, the model declares {sorted(declared)}")
    feeds = {name: feed(declared[name], rows) for name, rows in data.items()}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    (y,) = session.run(["output"], feeds)
    # float32 → Python float is exact; json writes the shortest repr that reads back equal.
    y = y.reshape(len(y), -1)
    print(json.dumps({"output": y.astype(np.float64).tolist(), "onnxruntime": onnxruntime.__version__,
                      "onnx": onnx.__version__}))


if __name__ == "__main__":
    main()
