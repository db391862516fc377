"""Fit a network spec to a dataset before training: input channels and classes follow the data;
the image size follows the data when the network works at that size, otherwise the images are
padded (a few pixels, as LeNet-5's 32x32 MNIST) or resized to the network's size."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.core.shapes import infer_shapes
from explorer.core.spec import NetworkSpec, SpecError


@dataclass(frozen=True)
class Adapted:
    spec: NetworkSpec
    image_size: tuple[int, int]        # (H, W) the images are brought to
    resize: str                        # "none", "pad" or "resize"
    notices: tuple[str, ...]


def adapt_spec(spec: NetworkSpec, channels: int, height: int, width: int, num_classes: int) -> Adapted:
    notices = []
    if len(spec.input) != 3:
        raise SpecError(f"this network takes a flat vector of {spec.input[0]} features; image datasets need "
                        f"a [channels, height, width] input: start with conv layers (or a flatten block)",
                        field="input")
    c, h, w = spec.input
    if c != channels:
        notices.append(f"input channels follow the dataset: {c} -> {channels}")
    if spec.num_classes != num_classes:
        notices.append(f"classes follow the dataset: {spec.num_classes} -> {num_classes}")
        spec = spec.with_num_classes(num_classes)
    resize = "none"
    size = (height, width)
    candidate = spec.with_input((channels, height, width))
    try:
        plan = infer_shapes(candidate)
        fits = plan.output_shape == (num_classes,)
    except SpecError:
        fits = False
    if fits:
        if (h, w) != (height, width):
            notices.append(f"the network runs at the dataset's {height}x{width} instead of {h}x{w}")
        spec = candidate
    else:
        spec = spec.with_input((channels, h, w))
        size = (h, w)
        if 0 < h - height <= 8 and 0 < w - width <= 8 and (h - height) % 2 == 0 and (w - width) % 2 == 0:
            resize = "pad"
            notices.append(f"images are zero-padded from {height}x{width} to {h}x{w} (as LeNet-5 padded MNIST)")
        elif (h, w) != (height, width):
            resize = "resize"
            notices.append(f"images are resized from {height}x{width} to {h}x{w} (the network needs that size)")
    plan = infer_shapes(spec)
    if plan.output_shape != (num_classes,):
        shape = "x".join(map(str, plan.output_shape))
        raise SpecError(f"the network ends with {shape} values but the dataset has {num_classes} classes; end "
                        f"it with gap (or flatten) and linear with out_features {num_classes}", field="blocks")
    return Adapted(spec=spec, image_size=size, resize=resize, notices=tuple(notices))
