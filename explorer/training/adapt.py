"""Fit a network spec to a dataset before training: input channels and classes follow the data,
and the image size is chosen here (the one owner of that rule).

The image size, for a dataset of h x w images and a network whose spec input is H x W:
  1. an explicit size (TrainConfig.image_size, or a run's own trained size when it is reloaded):
     that size, if the network works at it (ConfigError naming the smallest it works at otherwise);
  2. automatic: the dataset's h x w when the network works at it; otherwise
     - starting from weights (transfer learning): the size they were trained at (a run folder's
       fitted input), else the network's own H x W;
     - otherwise the smallest square size from max(h, w) up to max(H, W) at which the network works
       (VGG-16 on 28x28 MNIST trains at 32x32, not 224x224: 432M MACs per image instead of
       15,408M), and the network's own size when there is none.
Images are brought to the size by zero padding when it is at most 8 pixels larger, evenly on
each side (LeNet-5's 32x32 MNIST; automatic sizing takes one pixel more when that makes padding
possible), else by bilinear resizing."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.core.shapes import infer_shapes
from explorer.core.spec import NetworkSpec, SpecError
from explorer.errors import ConfigError

PAD_MAX = 8        # pixels: a size at most this much larger (by an even amount) is reached by zero padding


@dataclass(frozen=True)
class Adapted:
    spec: NetworkSpec
    image_size: tuple[int, int]        # (H, W) the images are brought to
    resize: str                        # "none", "pad" or "resize"
    notices: tuple[str, ...]


def _works(spec: NetworkSpec, channels: int, size: tuple[int, int], num_classes: int) -> bool:
    """The spec, at channels x size, ends with num_classes values (shape inference only, ~0.1 ms)."""
    try:
        return infer_shapes(spec.with_input((channels, *size))).output_shape == (num_classes,)
    except SpecError:
        return False


def _pads(small: tuple[int, int], big: tuple[int, int]) -> bool:
    return all(0 <= b - s <= PAD_MAX and (b - s) % 2 == 0 for s, b in zip(small, big)) and small != big


def smallest_size(spec: NetworkSpec, channels: int, height: int, width: int, num_classes: int
                  ) -> tuple[int, int] | None:
    """The smallest square size from max(h, w) up to the spec's own that the network works at,
    one pixel more when that lets zero padding reach it; None when there is none."""
    _, h, w = spec.input
    low = max(height, width)
    for side in range(low, max(h, w, low) + 1):
        if _works(spec, channels, (side, side), num_classes):
            if not _pads((height, width), (side, side)) and _pads((height, width), (side + 1, side + 1)) \
                    and _works(spec, channels, (side + 1, side + 1), num_classes):
                side += 1
            return side, side
    return None


def _choose(spec: NetworkSpec, channels: int, height: int, width: int, num_classes: int,
            size: tuple[int, int] | None, from_weights: bool, weights_size: tuple[int, int] | None
            ) -> tuple[tuple[int, int], str]:
    """(size, why): the image size by the module's rule, and a clause saying why it was chosen."""
    _, h, w = spec.input
    if size is not None:
        if not _works(spec, channels, size, num_classes):
            good = smallest_size(spec, channels, 1, 1, num_classes)
            hint = f"; the smallest size it works at is {good[0]}x{good[1]}" if good else ""
            raise ConfigError(f"the network does not work at {size[0]}x{size[1]} images{hint}; set the image "
                              f"size to 0 (automatic) or to a size it works at", field="image_size")
        return size, "the image size asked for"
    if _works(spec, channels, (height, width), num_classes):
        return (height, width), ""
    if from_weights:
        if weights_size and _works(spec, channels, weights_size, num_classes):
            return weights_size, "the size its starting weights were trained at"
        return (h, w), "the network's own size, as for weights learned at it"
    small = smallest_size(spec, channels, height, width, num_classes)
    if small is None or small == (h, w):
        return (h, w), "the network needs that size"
    return small, f"the smallest size the network works at; its own is {h}x{w}"


def adapt_spec(spec: NetworkSpec, channels: int, height: int, width: int, num_classes: int,
               size: tuple[int, int] | None = None, from_weights: bool = False,
               weights_size: tuple[int, int] | None = None) -> Adapted:
    """The spec fitted to a dataset of channels x height x width images in num_classes classes.
    size: an explicit (H, W) to train at (None: automatic); from_weights: the run starts from
    loaded weights: automatic sizing then keeps the size they were learned at (weights_size, a
    run's trained size, when the network works at it), else the network's own size."""
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
    chosen, why = _choose(spec, channels, height, width, num_classes, size, from_weights, weights_size)
    spec = spec.with_input((channels, *chosen))
    resize = "none"
    shown = f"{chosen[0]}x{chosen[1]}"
    if chosen == (height, width):
        if (h, w) != chosen:
            notices.append(f"the network runs at the dataset's {height}x{width} instead of {h}x{w}")
    elif _pads((height, width), chosen):
        resize = "pad"
        notices.append(f"images are zero-padded from {height}x{width} to {shown} ({why})")
    else:
        resize = "resize"
        notices.append(f"images are resized from {height}x{width} to {shown} ({why})")
    plan = infer_shapes(spec)
    if plan.output_shape != (num_classes,):
        shape = "x".join(map(str, plan.output_shape))
        raise SpecError(f"the network ends with {shape} values but the dataset has {num_classes} classes; end "
                        f"it with gap (or flatten) and linear with out_features {num_classes}", field="blocks")
    return Adapted(spec=spec, image_size=chosen, resize=resize, notices=tuple(notices))


def adapt_for_run(spec: NetworkSpec, config, channels: int, height: int, width: int, num_classes: int) -> Adapted:
    """adapt_spec as a run with `config` (a TrainConfig) asks: its image_size (0: automatic); when it
    starts from weights (config.init_from), the size they were trained at (a run folder's) or the
    network's own. RunError when init_from names no run or weights file."""
    weights_size = None
    if config.init_from and not config.image_size:
        from explorer.training.transfer import learned_size

        weights_size = learned_size(config.init_from)
    side = config.image_size
    return adapt_spec(spec, channels, height, width, num_classes, size=(side, side) if side else None,
                      from_weights=bool(config.init_from), weights_size=weights_size)
