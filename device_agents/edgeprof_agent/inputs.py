"""Input tensors: random within each input's dtype and quantisation range, or real data sent by the host."""

import numpy as np

from .protocol import BAD_INPUT, AgentError


def _shape(detail):
    # A dynamic dimension (-1 in shape_signature) is 1 in `shape` after allocation; use `shape`.
    return tuple(int(d) for d in detail["shape"])


def random_inputs(interpreter, seed=0):
    rng = np.random.RandomState(seed)
    tensors = []
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = _shape(detail)
        if dtype.kind == "f":
            value = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            value = rng.randint(int(info.min), int(info.max) + 1, size=shape, dtype=np.int64).astype(dtype)
        elif dtype.kind == "b":
            value = rng.randint(0, 2, size=shape).astype(dtype)
        else:
            raise AgentError(
                BAD_INPUT,
                "input %r has dtype %s, which the agent cannot fill" % (detail["name"], dtype),
                "send the inputs from the host as an .npz",
            )
        tensors.append(value)
    return tensors


def quantize_like(detail, array):
    """Float data into an int8/uint8 input uses the tensor's own scale and zero point."""
    dtype = np.dtype(detail["dtype"])
    array = np.asarray(array)
    if dtype.kind in "iu" and array.dtype.kind == "f":
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if not scale:
            raise AgentError(
                BAD_INPUT,
                "input %r is %s without quantisation parameters but the data is float" % (detail["name"], dtype),
                "send integer data for this input",
            )
        info = np.iinfo(dtype)
        array = np.clip(np.round(array / scale + zero_point), info.min, info.max)
    return array.astype(dtype)


def dequantize_like(detail, array):
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and scale:
        return (array.astype(np.float32) - zero_point) * scale
    return array


def load_arrays(path, interpreter):
    """Arrays from .npy (one input) or .npz (by input name, or in order), checked against the input shapes.

    Returns a list with one array of shape (N, ...) per input, where each sample matches the input without its batch.
    """
    details = interpreter.get_input_details()
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as data:
                keys = list(data.keys())
                names = [d["name"] for d in details]
                if all(n in keys for n in names):
                    arrays = [data[n] for n in names]
                elif len(keys) >= len(details):
                    preferred = [k for k in ("x", "x_test", "inputs") if k in keys]
                    order = preferred + [k for k in keys if k not in preferred]
                    arrays = [data[k] for k in order[: len(details)]]
                else:
                    raise AgentError(
                        BAD_INPUT,
                        "%s holds %d arrays but the model has %d inputs" % (path, len(keys), len(details)),
                        "send one array per input",
                    )
        else:
            arrays = [np.load(path, allow_pickle=False)]
    except AgentError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise AgentError(BAD_INPUT, "cannot read input data %s: %s" % (path, exc), "send a valid .npy or .npz")
    if len(arrays) != len(details):
        raise AgentError(
            BAD_INPUT,
            "the model has %d inputs but %d arrays were sent" % (len(details), len(arrays)),
            "send one array per input",
        )
    checked = []
    for detail, array in zip(details, arrays):
        want = _shape(detail)[1:]
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise AgentError(
                BAD_INPUT,
                "input data for %r has dtype %s, not numbers" % (detail["name"], array.dtype),
                "save the samples as a numeric array (float32, or the model's integer type)",
            )
        if tuple(array.shape[1:]) != want:
            if tuple(array.shape) == want or tuple(array.shape) == _shape(detail):
                array = array.reshape((1,) + want)
            else:
                raise AgentError(
                    BAD_INPUT,
                    "input %r expects samples of shape %s but the data has shape %s"
                    % (detail["name"], list(want), list(array.shape)),
                    "reshape the data to (N, %s)" % ", ".join(str(d) for d in want),
                )
        checked.append(quantize_like(detail, array))
    counts = set(a.shape[0] for a in checked)
    if len(counts) != 1:
        raise AgentError(
            BAD_INPUT,
            "inputs have different sample counts: %s" % sorted(counts),
            "send the same number of samples for every input",
        )
    return checked
