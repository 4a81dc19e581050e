"""Reads a TensorBoard log directory with TensorBoard's own reader and prints its scalars.

    python read_events.py LOG_DIR

Prints one JSON object: {"<run>": {"<tag>": [[step, value], ...]}} for every run
(subdirectory) TensorBoard's EventMultiplexer finds. kiln's tests compare it with what
they logged (tests/tensorboard.rs); a file TensorBoard cannot parse makes this fail.
"""

import json
import sys

from tensorboard.backend.event_processing import event_multiplexer


def main(log_dir):
    mux = event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(log_dir)
    mux.Reload()
    out = {}
    for run, tags in sorted(mux.Runs().items()):
        # Legacy simple_value scalars are converted to the scalars plugin's tensors by
        # TensorBoard's data_compat layer; read both views.
        scalars = {t: [[e.step, e.value] for e in mux.Scalars(run, t)] for t in tags.get("scalars", [])}
        for t in tags.get("tensors", []):
            events = mux.Tensors(run, t)
            scalars[t] = [[e.step, float(e.tensor_proto.float_val[0])] for e in events]
        out[run] = scalars
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
