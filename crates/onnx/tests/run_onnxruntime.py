"""Checks an ONNX file with onnx.checker (full), runs it in onnxruntime, prints the output.

    python run_onnxruntime.py MODEL.onnx INPUT.json   # INPUT: a list of rows

Each row is one sample's values in row-major (channels-last) order; they are reshaped to
the model input's declared sample shape. Prints {"output": [[...], ...] (one flat row per
sample), "onnxruntime": version, "onnx": version} as JSON.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime


def main():
    model_path, input_path = sys.argv[1], sys.argv[2]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    sample = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    # Token ids (an Embedding first) are int64; everything else float32.
    ids = model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    x = np.asarray(json.load(open(input_path)), dtype=np.int64 if ids else np.float32).reshape([-1] + sample)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    (y,) = session.run(["output"], {"input": x})
    # float32 → Python float is exact; json writes the shortest repr that reads back equal.
    y = y.reshape(len(y), -1)
    print(json.dumps({"output": y.astype(np.float64).tolist(), "onnxruntime": onnxruntime.__version__,
                      "onnx": onnx.__version__}))


if __name__ == "__main__":
    main()
