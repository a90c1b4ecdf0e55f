"""Cost of the per-layer analysis: time against the output-only check, and peak memory on a large model.

Usage:
    python benchmarks/bench_layers_analysis.py ratio [--repeats N]
        verify(..., per_layer=False) against verify(..., per_layer=True) on the sample models, in one
        process after a warm-up (model loading included, imports not): N interleaved pairs, the median
        of each mode, the median of the per-pair ratios, and the ratio of the fastest runs. The strict
        measure: only the check itself is timed.
    python benchmarks/bench_layers_analysis.py cli [--repeats N]
        the same checks as a user runs them: `eqcheck verify MODEL --group G -q` with and without
        --no-per-layer, each a fresh process (interpreter start and imports included), N interleaved
        pairs, medians and their ratio.
    python benchmarks/bench_layers_analysis.py resnet18 [--repeats 3] [--group p4]
        per layer against output only on a ResNet-18-sized ONNX model (basic blocks, 11.7M parameters,
        1x3x224x224), in one process, interleaved medians.
    python benchmarks/bench_layers_analysis.py sizes [--repeats 3] [--sizes 128 256]
        per layer against output only on a fully convolutional p4 network (eqcheck.nn, 6 group
        convolutions of 16 fields, zero padding, exported to ONNX with a dynamic image size) at each
        image size, in one process, the sizes and modes interleaved: whether the analysis gets dearer
        per pixel as its captures outgrow the memory budget (chunks).
    python benchmarks/bench_layers_analysis.py resnet [--size 224] [--group p4m] [--keep DIR]
        builds a ResNet-50-sized network by hand (bottlenecks 3-4-6-3, 25.6M parameters, no
        torchvision), exports it to ONNX in a temporary folder, then checks it in a fresh process per
        mode (output only, per layer) and reports wall time and peak resident memory (ru_maxrss).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_CHECKS = [("p4cnn.onnx", "p4"), ("p4cnn_broken.onnx", "p4"), ("p4mcnn.onnx", "p4m"),
                 ("models.py:p4cnn", "p4"), ("models.py:p4cnn_broken", "p4")]


def ratio(repeats: int) -> None:
    from eqcheck.api import verify

    print(f"{'model':24s} {'group':5s} {'output only':>12s} {'per layer':>10s} {'ratio':>6s} {'paired':>7s} "
          f"{'fastest':>8s}  layers  first failing")
    for name, group in SAMPLE_CHECKS:
        model = str(ROOT / "sample_models" / name)
        for per_layer in (False, True):  # warm-up: sessions, imports, the model file in the page cache
            verify(model, group, per_layer=per_layer)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for per_layer in (False, True):
                start = time.perf_counter()
                result = verify(model, group, per_layer=per_layer)
                times[per_layer].append(time.perf_counter() - start)
        plain, layered = statistics.median(times[False]), statistics.median(times[True])
        paired = statistics.median(b / a for a, b in zip(times[False], times[True]))
        fastest = min(times[True]) / min(times[False])
        print(f"{name:24s} {group:5s} {plain * 1e3:9.1f} ms {layered * 1e3:7.1f} ms {layered / plain:6.2f} "
              f"{paired:7.2f} {fastest:8.2f}  {len(result.layers):6d}  {result.first_failing_layer}")


def cli(repeats: int) -> None:
    command = [sys.executable, "-m", "eqcheck", "verify"]
    print(f"{'model':24s} {'group':5s} {'--no-per-layer':>15s} {'per layer':>10s} {'ratio':>6s}")
    for name, group in SAMPLE_CHECKS:
        model = str(ROOT / "sample_models" / name)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats + 1):  # the first pair warms the page cache
            for per_layer in (False, True):
                args = command + [model, "--group", group, "-q"] + ([] if per_layer else ["--no-per-layer"])
                start = time.perf_counter()
                subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[per_layer].append(time.perf_counter() - start)
        plain, layered = statistics.median(times[False][1:]), statistics.median(times[True][1:])
        print(f"{name:24s} {group:5s} {plain * 1e3:12.0f} ms {layered * 1e3:7.0f} ms {layered / plain:6.2f}")


def build_resnet50():
    """ResNet-50's shape (torchvision's layout, v1.5 strides), written out here; eval mode, seeded."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            width, out = planes, planes * 4
            self.conv1, self.bn1 = nn.Conv2d(inplanes, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or inplanes != out:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            return self.relu(self.bn3(self.conv3(y)) + identity)

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            stages, inplanes = [], 64
            for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                layers = []
                for index in range(blocks):
                    layers.append(Bottleneck(inplanes, planes, stride if index == 0 else 1))
                    inplanes = planes * 4
                stages.append(nn.Sequential(*layers))
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(2048, 1000))

        def forward(self, x):
            return self.head(self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x))))))

    torch.manual_seed(0)
    return ResNet50().eval()


def export_resnet(folder: Path, size: int) -> Path:
    import warnings

    import torch

    model = build_resnet50()
    parameters = sum(p.numel() for p in model.parameters())
    path = folder / "resnet50_like.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    print(f"built {path.name}: {parameters / 1e6:.1f}M parameters, {path.stat().st_size / 2**20:.0f} MiB, "
          f"input 1x3x{size}x{size}")
    return path


def build_resnet18():
    """ResNet-18's shape (torchvision's layout: basic blocks 2-2-2-2, 11.7M parameters); eval mode, seeded."""
    import torch
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
            self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity)

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            stages, inplanes = [], 64
            for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                stages.append(nn.Sequential(Basic(inplanes, planes, stride), Basic(planes, planes, 1)))
                inplanes = planes
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(512, 1000))

        def forward(self, x):
            return self.head(self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x))))))

    torch.manual_seed(0)
    return ResNet18().eval()


def resnet18_ratio(repeats: int, group: str) -> None:
    """Per layer against output only, in one process (imports and a warm-up left out), interleaved."""
    import warnings

    import torch

    from eqcheck.api import verify

    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "resnet18_like.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(build_resnet18(), (torch.randn(1, 3, 224, 224),), str(path), dynamo=False,
                              opset_version=17, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        shape = [1, 3, 224, 224]
        for per_layer in (False, True):
            verify(str(path), group, input_shape=shape, per_layer=per_layer)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for per_layer in (False, True):
                start = time.perf_counter()
                verify(str(path), group, input_shape=shape, per_layer=per_layer)
                times[per_layer].append(time.perf_counter() - start)
    plain, layered = statistics.median(times[False]), statistics.median(times[True])
    print(f"ResNet-18-sized ONNX, 1x3x224x224, {group}: output only {plain:.2f} s, per layer {layered:.2f} s "
          f"(medians of {repeats}): {layered / plain:.1f}x")


def build_p4_fcn():
    """A fully convolutional p4 network: lifting, 5 group convolutions, group pooling; eval mode, seeded."""
    import torch
    from torch import nn

    from eqcheck.nn import GroupPool, P4ConvP4, P4ConvZ2

    torch.manual_seed(0)
    layers = [P4ConvZ2(3, 16, 3, padding=1), nn.ReLU()]
    for _ in range(5):
        layers += [P4ConvP4(16, 16, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, GroupPool("max")).eval()


def sizes_ratio(repeats: int, sizes: list[int]) -> None:
    import warnings

    import torch

    from eqcheck.api import verify

    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "p4_fcn.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(build_p4_fcn(), (torch.randn(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch", 2: "h", 3: "w"}, "output": {0: "batch", 2: "h", 3: "w"}})
        runs = [(size, per_layer) for size in sizes for per_layer in (False, True)]
        times: dict[tuple[int, bool], list[float]] = {run: [] for run in runs}
        layer_count: dict[int, int] = {}
        for size, per_layer in runs:  # warm-up
            verify(str(path), "p4", input_shape=[2, 3, size, size], per_layer=per_layer)
        for _ in range(repeats):
            for size, per_layer in runs:
                start = time.perf_counter()
                result = verify(str(path), "p4", input_shape=[2, 3, size, size], per_layer=per_layer)
                times[(size, per_layer)].append(time.perf_counter() - start)
                assert result.passed, "the p4 network must pass"
                if per_layer:
                    layer_count[size] = len(result.layers)
    print(f"p4 FCN (ONNX, batch 2, 16 fields), medians of {repeats} interleaved runs (ratio of medians; median "
          f"of the ratios within a repeat; ratio of the fastest runs):")
    for size in sizes:
        plain, layered = statistics.median(times[(size, False)]), statistics.median(times[(size, True)])
        paired = statistics.median(b / a for a, b in zip(times[(size, False)], times[(size, True)]))
        fastest = min(times[(size, True)]) / min(times[(size, False)])
        print(f"  {size}x{size}: output only {plain:.2f} s, per layer {layered:.2f} s: {layered / plain:.2f}x, "
              f"paired {paired:.2f}x, fastest {fastest:.2f}x ({layer_count[size]} layers; spread of output-only "
              f"runs {min(times[(size, False)]):.2f}-{max(times[(size, False)]):.2f} s, per-layer "
              f"{min(times[(size, True)]):.2f}-{max(times[(size, True)]):.2f} s)")


def child(model: str, group: str, size: int, per_layer: bool) -> None:
    """One check in a fresh process: prints a JSON line with time, peak memory and the layer summary."""
    from eqcheck.api import verify

    start = time.perf_counter()
    result = verify(model, group, input_shape=[1, 3, size, size], per_layer=per_layer)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({"seconds": elapsed, "peak_bytes": peak, "layers": len(result.layers),
                      "failing": sum(1 for layer in result.layers if not layer.passed),
                      "first_failing_layer": result.first_failing_layer, "passed": result.passed,
                      "notes": list(result.run.notes)}))


def resnet(size: int, group: str, keep: str | None) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(keep) if keep else Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        path = export_resnet(folder, size)
        for per_layer in (False, True):
            command = [sys.executable, __file__, "child", str(path), group, str(size), str(int(per_layer))]
            line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            report = json.loads(line)
            mode = "per layer  " if per_layer else "output only"
            print(f"{mode} {group}: {report['seconds']:7.1f} s, peak RSS {report['peak_bytes'] / 2**30:5.2f} GiB, "
                  f"{report['layers']} layers, {report['failing']} failing, first failing "
                  f"{report['first_failing_layer']}, passed {report['passed']}")
            for note in report["notes"]:
                print(f"    note: {note}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), bool(int(sys.argv[5])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    ratio_parser = sub.add_parser("ratio")
    ratio_parser.add_argument("--repeats", type=int, default=21)
    cli_parser = sub.add_parser("cli")
    cli_parser.add_argument("--repeats", type=int, default=5)
    r18_parser = sub.add_parser("resnet18")
    r18_parser.add_argument("--repeats", type=int, default=3)
    r18_parser.add_argument("--group", default="p4")
    sizes_parser = sub.add_parser("sizes")
    sizes_parser.add_argument("--repeats", type=int, default=3)
    sizes_parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    resnet_parser = sub.add_parser("resnet")
    resnet_parser.add_argument("--size", type=int, default=224)
    resnet_parser.add_argument("--group", default="p4m")
    resnet_parser.add_argument("--keep", default=None, help="export into this folder and keep the file")
    args = parser.parse_args()
    if args.what == "ratio":
        ratio(args.repeats)
    elif args.what == "cli":
        cli(args.repeats)
    elif args.what == "resnet18":
        resnet18_ratio(args.repeats, args.group)
    elif args.what == "sizes":
        sizes_ratio(args.repeats, args.sizes)
    else:
        resnet(args.size, args.group, args.keep)


if __name__ == "__main__":
    main()
