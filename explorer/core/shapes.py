"""Walk a spec with the pure shape formulas: every block instance's input and output shape,
its readable name, and the warnings (e.g. a stride that drops the last columns).

This is cheap (no torch) and is what validation, the builder and `build` rely on; the analysis
confirms the same shapes with a forward pass on the meta device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer.core.registry import Params, ShapeProblem, Shape, get_block, resolve_params
from explorer.core.spec import NetworkSpec, SpecError

MAX_ELEMENTS = 2**40  # a single feature map larger than this (per image) is surely a typo


@dataclass(frozen=True)
class BlockInstance:
    """One built copy of a block (a block with repeat=3 gives three instances)."""

    name: str             # module name in the built network, e.g. "conv3" or "residual2"
    block_index: int      # index in spec.blocks
    copy_index: int       # 0 .. repeat-1
    type: str
    params: Params
    in_shape: Shape
    out_shape: Shape
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShapePlan:
    instances: tuple[BlockInstance, ...]
    output_shape: Shape
    warnings: tuple[str, ...] = field(default=())  # network-level (e.g. class count mismatch)


def infer_shapes(spec: NetworkSpec) -> ShapePlan:
    shape: Shape = tuple(spec.input)
    counters: dict[str, int] = {}
    instances: list[BlockInstance] = []
    for index, block in enumerate(spec.blocks):
        definition = get_block(block.type)
        params = resolve_params(block)
        for copy in range(block.repeat):
            notes: list[str] = []
            try:
                out = tuple(definition.output_shape(shape, params, notes.append))
            except ShapeProblem as problem:
                where = f" (copy {copy + 1} of {block.repeat})" if block.repeat > 1 else ""
                raise SpecError(f"{problem.message} [input {'x'.join(map(str, shape))}{where}]",
                                block_index=index, block_type=block.type, field=problem.field) from None
            if any(s < 1 for s in out):
                raise SpecError(f"the output would be {'x'.join(map(str, out))}, which is empty; "
                                f"reduce the kernel/stride or remove a downsampling layer",
                                block_index=index, block_type=block.type)
            elements = 1
            for s in out:
                elements *= s
            if elements > MAX_ELEMENTS:
                raise SpecError(f"the output {'x'.join(map(str, out))} has {elements:,} elements per "
                                f"image, more than the limit {MAX_ELEMENTS:,}; use fewer channels",
                                block_index=index, block_type=block.type)
            counters[block.type] = counters.get(block.type, 0) + 1
            instances.append(BlockInstance(
                name=f"{block.type}{counters[block.type]}", block_index=index, copy_index=copy,
                type=block.type, params=params, in_shape=shape, out_shape=out,
                warnings=tuple(dict.fromkeys(notes))))
            shape = out
    warnings = []
    if spec.blocks:
        if len(shape) != 1:
            warnings.append(f"the network ends with a {'x'.join(map(str, shape))} feature map; a "
                            f"classifier ends with a flat vector of {spec.num_classes} scores "
                            f"(add gap or flatten, then linear)")
        elif shape[0] != spec.num_classes:
            warnings.append(f"the last layer gives {shape[0]} outputs but num_classes is "
                            f"{spec.num_classes}; set the last layer's size to {spec.num_classes}")
    return ShapePlan(instances=tuple(instances), output_shape=shape, warnings=tuple(warnings))
