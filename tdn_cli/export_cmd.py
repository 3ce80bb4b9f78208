"""`tdn export MODEL|CFG [WEIGHTS] --onnx FILE`: the network as an ONNX model (engine/onnx_export.py).

A taught model (`tdn teach`'s NAME.cfg + NAME.weights) is exported like any other cfg + weights.
"""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="write a network as an ONNX model",
        description="Write a network as an ONNX model (opset 17): input 'image', "
        "(batch, 3, height, width) float32 RGB in 0..1; output "
        "'probabilities', (batch, classes), the values `tdn classify` "
        "computes. Batch norm folded; needs pip install 'tdn[onnx]'.",
    )
    p.add_argument(
        "model", metavar="MODEL|CFG", help="a model name (tiny, darknet, ...; see `tdn models`) or a darknet .cfg file"
    )
    p.add_argument("weights_path", nargs="?", metavar="WEIGHTS", help="the .weights file when MODEL is a .cfg")
    p.add_argument("--weights", metavar="FILE", help="weights file (default: the downloaded one)")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument(
        "--size",
        metavar="WxH",
        help="the input size the model takes (default: the cfg's; networks with a [connected] layer take only that)",
    )
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import engine
    from engine.onnx_export import export_onnx, require

    from .common import load_network
    from .summary_cmd import parse_size

    require()  # before any work: without onnx, the one line on how to get it
    size = parse_size(args.size) if args.size else None
    folder = Path(args.onnx).parent
    if not folder.is_dir():
        raise engine.EngineError(f"cannot write {args.onnx}: {folder} is not a folder")
    net = load_network(args.model, args.weights or args.weights_path)
    export_onnx(net, args.onnx, size)
    w, h = size or net.input_size
    print(f"{args.onnx}: {net.name} at {w}x{h}, {net.classes} classes (input 'image' NCHW, output 'probabilities')")
    return 0
