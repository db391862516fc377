"""The model zoo: torchvision's classic CNNs with their published figures, per-depth profiles,
and the live explainers of the course's design arguments. No streamlit here.

Published figures (parameters, GMACs, ImageNet top-1/top-5) come from torchvision's own weight
metadata, offline (explorer.core.tvmodels.published_figures); NOTES says what they leave out (the
training-only auxiliary heads of GoogLeNet and Inception v3). Everything else is computed by the
core: the explainers build two small NetworkSpecs each and read their parameters, MACs and
receptive fields from explorer.analyze, so the numbers on screen are the analysis's numbers:
- stacked_convs: n stacked 3x3 convs (C -> C) against one (2n+1)x(2n+1) conv: the same
  receptive field with fewer parameters and n non-linearities instead of one (VGG);
- bottleneck: GoogLeNet's 1x1 reduction before an expensive 5x5 conv (28x28x192 -> 32 maps:
  120,422,400 multiplies directly, about a tenth through 16 channels);
- separable: a depthwise FxF conv plus a 1x1 pointwise conv against a full FxF conv
  (MobileNet: cost ratio 1/N + 1/F^2). Biases are left out here, as batch norm follows each conv.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from explorer.core.analysis import Analysis, LayerRow, analyze
from explorer.core.presets import list_presets
from explorer.core.spec import NetworkSpec, spec_from_dict
from explorer.core.tvmodels import analysis_model, classification_models, published_figures

# The classics, oldest first: (torchvision name, title, family, year of the paper).
CLASSICS: tuple[tuple[str, str, str, int], ...] = (
    ("alexnet", "AlexNet", "AlexNet", 2012),
    ("vgg11", "VGG-11", "VGG", 2014), ("vgg13", "VGG-13", "VGG", 2014), ("vgg16", "VGG-16", "VGG", 2014),
    ("vgg19", "VGG-19", "VGG", 2014), ("vgg16_bn", "VGG-16 (BN)", "VGG", 2014),
    ("googlenet", "GoogLeNet", "Inception", 2014), ("inception_v3", "Inception v3", "Inception", 2015),
    ("resnet18", "ResNet-18", "ResNet", 2015), ("resnet34", "ResNet-34", "ResNet", 2015),
    ("resnet50", "ResNet-50", "ResNet", 2015), ("resnet101", "ResNet-101", "ResNet", 2015),
    ("resnet152", "ResNet-152", "ResNet", 2015),
    ("squeezenet1_0", "SqueezeNet 1.0", "SqueezeNet", 2016), ("squeezenet1_1", "SqueezeNet 1.1", "SqueezeNet", 2016),
    ("wide_resnet50_2", "Wide ResNet-50-2", "ResNet", 2016),
    ("densenet121", "DenseNet-121", "DenseNet", 2017), ("densenet169", "DenseNet-169", "DenseNet", 2017),
    ("densenet201", "DenseNet-201", "DenseNet", 2017), ("resnext50_32x4d", "ResNeXt-50 32x4d", "ResNeXt", 2017),
    ("mobilenet_v2", "MobileNetV2", "MobileNet", 2018), ("shufflenet_v2_x1_0", "ShuffleNetV2 1.0x", "ShuffleNet", 2018),
    ("mobilenet_v3_small", "MobileNetV3-Small", "MobileNet", 2019),
    ("mobilenet_v3_large", "MobileNetV3-Large", "MobileNet", 2019),
    ("mnasnet1_0", "MnasNet 1.0", "MnasNet", 2019), ("efficientnet_b0", "EfficientNet-B0", "EfficientNet", 2019),
    ("convnext_tiny", "ConvNeXt-T", "ConvNeXt", 2022),
)


# What a model's published figures and its analysis leave out (the zoo row's note). Counted with
# torchvision's constructors (aux_logits=True minus aux_logits=False); tests/test_zoo.py checks them.
NOTES: dict[str, str] = {
    "googlenet": "Its two auxiliary classifiers (aux1, aux2: 6,379,984 parameters, used only in training) "
                 "are left out of the published figures and of the analysis.",
    "inception_v3": "The published parameter count (27,161,264) includes the auxiliary classifier "
                    "(AuxLogits: 3,326,696 parameters, used only in training); the analysis builds the network "
                    "without it (23,834,568). The published GMACs leave it out too: it does not run at inference.",
}


# Written next to their bubble in the accuracy-vs-operations chart (the others show on hover).
LABELED = ("alexnet", "vgg16", "vgg19", "googlenet", "inception_v3", "resnet18", "resnet50", "resnet152",
           "squeezenet1_0", "densenet121", "resnext50_32x4d", "mobilenet_v2", "shufflenet_v2_x1_0",
           "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "wide_resnet50_2")


@dataclass(frozen=True)
class ZooModel:
    name: str                 # torchvision model name
    title: str
    family: str
    year: int | None
    params: int               # published (torchvision weight metadata), biases included
    gmacs: float              # published GMACs per image at input_size (torchvision's `_ops`)
    acc1: float               # ImageNet-1k top-1, percent
    acc5: float
    input_size: int
    weights: str              # the torchvision weights the figures belong to, e.g. ResNet50_Weights.IMAGENET1K_V2
    preset: str | None        # the explorer preset that reproduces it exactly, if any
    note: str = ""            # what the figures leave out (NOTES), e.g. training-only auxiliary heads


def preset_mirrors() -> dict[str, str]:
    """torchvision name -> the preset that mirrors it (PresetInfo.mirrors)."""
    return {p.mirrors: p.name for p in list_presets() if p.mirrors}


@lru_cache(maxsize=2)
def zoo_models(include_all: bool = False) -> tuple[ZooModel, ...]:
    """The classics (or every torchvision classification model with published ImageNet weights)."""
    mirrors = preset_mirrors()
    known = {name: (title, family, year) for name, title, family, year in CLASSICS}
    names = [c[0] for c in CLASSICS]
    if include_all:
        names += [n for n in classification_models() if n not in known]
    models = []
    for name in names:
        figures = published_figures(name)
        if figures is None:
            continue
        title, family, year = known.get(name, (name, _family(name), None))
        models.append(ZooModel(name=name, title=title, family=family, year=year, params=figures.params,
                               gmacs=figures.gmacs, acc1=figures.acc1, acc5=figures.acc5,
                               input_size=figures.input_size, weights=figures.weights.split(".")[-1],
                               preset=mirrors.get(name), note=NOTES.get(name, "")))
    return tuple(models)


def _family(name: str) -> str:
    for prefix, family in (("vit", "ViT"), ("swin", "Swin"), ("regnet", "RegNet"), ("resnext", "ResNeXt"),
                           ("wide_resnet", "ResNet"), ("resnet", "ResNet"), ("densenet", "DenseNet"),
                           ("efficientnet", "EfficientNet"), ("mobilenet", "MobileNet"), ("mnasnet", "MnasNet"),
                           ("shufflenet", "ShuffleNet"), ("convnext", "ConvNeXt"), ("maxvit", "MaxViT"),
                           ("vgg", "VGG"), ("squeezenet", "SqueezeNet"), ("inception", "Inception")):
        if name.startswith(prefix):
            return family
    return name


def zoo_model(name: str, include_all: bool = True) -> ZooModel:
    for m in zoo_models(include_all):
        if m.name == name:
            return m
    raise KeyError(name)


def zoo_frame(models: tuple[ZooModel, ...]) -> pd.DataFrame:
    """The zoo as a table, oldest first."""
    return pd.DataFrame({
        "Model": [m.title for m in models], "torchvision": [m.name for m in models],
        "Family": [m.family for m in models], "Year": pd.array([m.year for m in models], dtype="Int64"),
        "Params": [m.params for m in models], "GMACs": [m.gmacs for m in models],
        "Top-1 (%)": [m.acc1 for m in models], "Top-5 (%)": [m.acc5 for m in models],
        "Input": [f"{m.input_size}×{m.input_size}" for m in models], "Weights": [m.weights for m in models],
        "Top-1 per M params": [m.acc1 / (m.params / 1e6) for m in models],
        "Preset": [m.preset or "" for m in models], "Note": [m.note for m in models],
    })


def analyze_zoo_model(name: str, batch: int = 1) -> Analysis:
    """The torchvision model analysed at the input size of its weights, built for that size when
    its constructor fixes one (ViT-H/14: 518x518), on the meta device, or on the CPU within the
    server's budget for real weights when its constructor needs real tensors (the RegNets).
    Raises SpecError for an unknown name and BudgetError for a RegNet over that budget."""
    figures = published_figures(name)
    size = figures.input_size if figures else 224
    return analyze(analysis_model(name, image_size=size), (3, size, size), batch=batch, name=name,
                   source="torchvision")


def weight_layers(a: Analysis) -> list[LayerRow]:
    """Rows that carry weights and do multiply-adds (conv and linear), in execution order."""
    return [r for r in a.rows if r.macs > 0 and r.params > 0]


def depth_profile(a: Analysis) -> pd.DataFrame:
    """Per weight layer (its number along the depth, in execution order): output activations per
    image, their bytes at the analysis batch/dtype, parameters, and the running parameter total."""
    rows = weight_layers(a)
    frame = pd.DataFrame({
        "depth": range(1, len(rows) + 1), "layer": [r.name for r in rows], "type": [r.type for r in rows],
        "output": ["×".join(map(str, r.output_shape)) for r in rows],
        "activations": [r.activations for r in rows], "activation_bytes": [r.activation_bytes for r in rows],
        "params": [r.params for r in rows], "macs": [r.macs for r in rows]})
    frame["cumulative_params"] = frame["params"].cumsum()
    return frame


# --- explainers ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One side of an explainer: a small spec and its analysis."""

    label: str
    spec: NetworkSpec
    analysis: Analysis

    @property
    def params(self) -> int:
        return self.analysis.totals.params

    @property
    def macs(self) -> int:
        return self.analysis.totals.macs

    @property
    def receptive_field(self) -> int:
        rf = self.analysis.rows[-1].receptive_field
        return max(rf) if rf else 1

    @property
    def conv_layers(self) -> int:
        return len(weight_layers(self.analysis))

    def layer_macs(self) -> list[tuple[str, int]]:
        return [(r.name, r.macs) for r in weight_layers(self.analysis)]

    def layer_params(self) -> list[tuple[str, int]]:
        return [(r.name, r.params) for r in weight_layers(self.analysis)]


@dataclass(frozen=True)
class Explainer:
    title: str
    a: Variant            # the classic, expensive way
    b: Variant            # the cheaper design
    lesson: str

    @property
    def params_ratio(self) -> float:
        return self.a.params / self.b.params if self.b.params else float("inf")

    @property
    def macs_ratio(self) -> float:
        return self.a.macs / self.b.macs if self.b.macs else float("inf")


def _variant(label: str, name: str, input_shape: list[int], blocks: list[dict]) -> Variant:
    spec = spec_from_dict({"name": name, "input": input_shape, "num_classes": 10, "blocks": blocks})
    return Variant(label, spec, analyze(spec))


def stacked_convs(channels: int = 256, n: int = 2, size: int = 56) -> Explainer:
    """n stacked 3x3 convs (each C -> C, stride 1, pad 1, ReLU after) against one (2n+1)x(2n+1)
    conv with the same receptive field, on a C x size x size input."""
    k = 2 * n + 1
    single = _variant(f"one {k}×{k} conv", f"single-{k}x{k}", [channels, size, size],
                      [{"type": "conv", "out_channels": channels, "kernel": k, "padding": n}, {"type": "relu"}])
    stack = _variant(f"{n} stacked 3×3 convs", f"stack-{n}x3x3", [channels, size, size],
                     [{"type": "conv", "out_channels": channels, "kernel": 3, "padding": 1}, {"type": "relu"}] * n)
    return Explainer(f"{n} stacked 3×3 convolutions against one {k}×{k}", single, stack,
                     f"Both see {k}×{k} input pixels, but the stack has {n} non-linearities instead of one "
                     f"and fewer weights: {n}·(3·3·C·C + C) against {k}·{k}·C·C + C.")


def bottleneck(in_channels: int = 192, size: int = 28, out_channels: int = 32, reduce_to: int = 16,
               kernel: int = 5) -> Explainer:
    """GoogLeNet's 5x5 branch: a 'same' KxK conv to out_channels straight on in_channels, against a
    1x1 reduction to reduce_to channels (ReLU) first."""
    shape = [in_channels, size, size]
    direct = _variant(f"{kernel}×{kernel} conv on {in_channels} channels", "direct", shape,
                      [{"type": "conv", "out_channels": out_channels, "kernel": kernel, "padding": kernel // 2}])
    reduced = _variant(f"1×1 to {reduce_to}, then {kernel}×{kernel}", "bottleneck", shape,
                       [{"type": "conv", "out_channels": reduce_to, "kernel": 1}, {"type": "relu"},
                        {"type": "conv", "out_channels": out_channels, "kernel": kernel, "padding": kernel // 2}])
    return Explainer(f"GoogLeNet's 1×1 bottleneck ({size}×{size}×{in_channels} → {size}×{size}×{out_channels})",
                     direct, reduced,
                     f"The 1×1 conv shrinks the depth the {kernel}×{kernel} filters must read from "
                     f"{in_channels} to {reduce_to} channels; the output shape is the same.")


def separable(in_channels: int = 512, out_channels: int = 512, size: int = 14, kernel: int = 3) -> Explainer:
    """A full KxK conv against depthwise KxK (groups = in_channels) + pointwise 1x1, no biases."""
    shape = [in_channels, size, size]
    pad = kernel // 2
    full = _variant(f"full {kernel}×{kernel} conv", "full", shape,
                    [{"type": "conv", "out_channels": out_channels, "kernel": kernel, "padding": pad, "bias": False}])
    sep = _variant(f"depthwise {kernel}×{kernel} + pointwise 1×1", "separable", shape,
                   [{"type": "conv", "out_channels": in_channels, "kernel": kernel, "padding": pad,
                     "groups": in_channels, "bias": False},
                    {"type": "conv", "out_channels": out_channels, "kernel": 1, "bias": False}])
    return Explainer(f"Depthwise-separable against full convolution ({size}×{size}×{in_channels} → "
                     f"{out_channels} channels)", full, sep,
                     f"Filter each channel alone, then mix channels with 1×1 convs: the cost ratio is "
                     f"1/N + 1/F² = 1/{out_channels} + 1/{kernel * kernel} (MobileNet).")


__all__ = ["CLASSICS", "NOTES", "LABELED", "ZooModel", "zoo_models", "zoo_model", "zoo_frame", "preset_mirrors",
           "analyze_zoo_model", "weight_layers", "depth_profile", "Variant", "Explainer", "stacked_convs",
           "bottleneck", "separable"]
