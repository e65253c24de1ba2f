"""Model conversions for scripts/models; runs inside the throwaway venv it creates.

  dequant SRC DST   fold constant DequantizeLinear (and the Reshapes after them) into
                    fp32 initializers: OpenCV 4.6 has no DequantizeLinear. Needs only onnx.
  keras SRC.h5 DST  Keras HDF5 -> ONNX (tf2onnx, opset 13) -> onnxsim -> Clip rewrite.
  tflite SRC DST    TFLite -> ONNX (tf2onnx, opset 13) -> onnxsim -> Clip rewrite.

The Clip rewrite: OpenCV 4.6's ONNX importer accepts Clip only with one input and
min/max attributes, so every Clip whose min/max inputs are constants becomes that form.
"""
import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import onnx
from onnx import helper, numpy_helper


def fail(msg):
    sys.exit(f"prepare_models: {msg}")


def constants(graph):
    """name -> numpy array for initializers and Constant-node outputs."""
    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            attr = {a.name: a for a in n.attribute}
            if "value" in attr:
                out[n.output[0]] = numpy_helper.to_array(attr["value"].t)
    return out


def drop_unused(graph):
    """Remove initializers and Constant nodes nothing reads, and graph inputs that were
    stand-ins for removed weights (old IR style lists weights as inputs)."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    while True:
        dead = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for i in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(i)
    for i in [i for i in graph.input if i.name not in used]:
        graph.input.remove(i)


def dequantize(x, scale, zero_point, axis, block_size):
    x = x.astype(np.int32)
    zp = np.zeros_like(scale, dtype=np.int32) if zero_point is None else zero_point.astype(np.int32)
    scale = scale.astype(np.float32)
    if scale.ndim == 0:
        return ((x - zp).astype(np.float32) * scale).astype(np.float32)
    axis = axis % x.ndim
    if block_size:  # blocked quantization (opset 21): scale has x's shape with ceil(n/B) on axis
        n = x.shape[axis]
        scale = np.repeat(scale, block_size, axis=axis).take(range(n), axis=axis)
        zp = np.repeat(zp, block_size, axis=axis).take(range(n), axis=axis)
    else:  # per-axis: 1-D scale along axis
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape)
    return ((x - zp).astype(np.float32) * scale).astype(np.float32)


def cmd_dequant(src, dst):
    model = onnx.load(src)
    g = model.graph
    folded = 0
    while True:
        consts = constants(g)
        for n in g.node:
            if n.op_type not in ("DequantizeLinear", "Reshape"):
                continue
            ins = [i for i in n.input if i]
            if not all(i in consts for i in ins):
                continue
            attr = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type == "DequantizeLinear":
                zp = consts[n.input[2]] if len(n.input) > 2 and n.input[2] else None
                val = dequantize(consts[n.input[0]], consts[n.input[1]], zp,
                                 attr.get("axis", 1), attr.get("block_size", 0))
                folded += 1
            else:
                shape = consts[n.input[1]].astype(np.int64).tolist()
                data = consts[n.input[0]]
                if not attr.get("allowzero", 0):
                    shape = [data.shape[k] if s == 0 else s for k, s in enumerate(shape)]
                val = data.reshape(shape)
            g.initializer.append(numpy_helper.from_array(val, n.output[0]))
            g.node.remove(n)
            break
        else:
            break
    left = [n.name for n in g.node if n.op_type == "DequantizeLinear"]
    if left:
        fail(f"{src}: DequantizeLinear with non-constant inputs left: {left[:5]}")
    if not folded:
        fail(f"{src}: no DequantizeLinear found")
    drop_unused(g)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f"folded {folded} DequantizeLinear", file=sys.stderr)


def rewrite_clips(model):
    g = model.graph
    consts = constants(g)
    count = 0
    for n in g.node:
        if n.op_type != "Clip" or len(n.input) == 1:
            continue
        lims = list(n.input[1:3]) + [""] * (3 - len(n.input))
        if any(x and x not in consts for x in lims):
            fail(f"Clip {n.name} has a non-constant min/max")
        lo, hi = (float(consts[x].reshape(())) if x else None for x in lims)
        del n.input[1:]
        del n.attribute[:]
        if lo is not None:
            n.attribute.append(helper.make_attribute("min", lo))
        if hi is not None:
            n.attribute.append(helper.make_attribute("max", hi))
        count += 1
    drop_unused(g)
    return count


def canonical_names(model):
    """tf2onnx numbers the names it makes up (`const_fold_opt__455`) in an order that
    changes from run to run; renumber them in graph order so the output is reproducible."""
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    pattern = re.compile(r"^(.*?)__\d+(:\d+)?$")
    mapping, counters = {}, {}

    def new_name(name):
        if name in mapping:
            return mapping[name]
        m = pattern.match(name)
        if not m or name in keep:
            return name
        prefix = m.group(1)
        counters[prefix] = counters.get(prefix, 0) + 1
        mapping[name] = f"{prefix}__{counters[prefix]}" + (m.group(2) or "")
        return mapping[name]

    inits = {i.name: i for i in g.initializer}
    order = []
    for n in g.node:
        for i, x in enumerate(n.input):
            if x in inits and x not in order:
                order.append(x)
            n.input[i] = new_name(x)
        for i, x in enumerate(n.output):
            n.output[i] = new_name(x)
        n.name = new_name(n.name)
    order += [x for x in inits if x not in order]
    del g.initializer[:]
    for x in order:
        t = inits[x]
        t.name = new_name(t.name)
        g.initializer.append(t)
    for v in g.value_info:
        v.name = new_name(v.name)
    produced = [o for n in g.node for o in n.output] + [i.name for i in g.initializer]
    if len(produced) != len(set(produced)):
        fail("name clash while renumbering tf2onnx names")


def finish(onnx_path, dst, src):
    """onnxsim, then the Clip rewrite, then save to dst."""
    from onnxsim import simplify

    model = onnx.load(onnx_path)
    canonical_names(model)
    model, ok = simplify(model, check_n=1)  # compares outputs on random input
    if not ok:
        fail(f"onnxsim could not validate the simplified model of {onnx_path}")
    onnx.checker.check_model(model)
    clips = rewrite_clips(model)  # Clip-6 form under opset 13: the checker would refuse it now
    canonical_names(model)
    # tf2onnx records the path it read (a temp dir); keep only the file name
    model.graph.doc_string = f"converted from {os.path.basename(src)}"
    onnx.save(model, dst)
    print(f"simplified; rewrote {clips} Clip", file=sys.stderr)


def cmd_tflite(src, dst):
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        run = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", src,
                              "--output", raw, "--opset", "13"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0 or not os.path.exists(raw):
            sys.stderr.write(run.stdout[-3000:])
            fail(f"tf2onnx failed on {src}")
        finish(raw, dst, src)


def cmd_keras(src, dst):
    import tensorflow as tf
    import tf2onnx

    keras_model = tf.keras.models.load_model(src, compile=False)
    spec = [tf.TensorSpec(i.shape, i.dtype, name=i.name) for i in keras_model.inputs]
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        tf2onnx.convert.from_keras(keras_model, input_signature=spec, opset=13, output_path=raw)
        finish(raw, dst, src)


if __name__ == "__main__":
    cmds = {"dequant": cmd_dequant, "keras": cmd_keras, "tflite": cmd_tflite}
    if len(sys.argv) != 4 or sys.argv[1] not in cmds:
        fail(f"usage: {sys.argv[0]} {{{'|'.join(cmds)}}} SRC DST")
    cmds[sys.argv[1]](sys.argv[2], sys.argv[3])
