"""NetworkSpec -> torch.nn.Module, carrying the shape forward (as torchvision's make_layers does).

The result is an nn.Sequential whose children are named after the block instances
("conv1", "relu1", "maxpool1", "residual1", ...). Call it under `torch.device("meta")` to get a
weight-free model for analysis.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from explorer.core.registry import get_block
from explorer.core.shapes import ShapePlan, infer_shapes
from explorer.core.spec import NetworkSpec


class SpecNetwork(nn.Sequential):
    """An nn.Sequential that remembers the spec (and its shape plan) it was built from."""

    def __init__(self, spec: NetworkSpec, plan: ShapePlan):
        super().__init__(OrderedDict(
            (inst.name, get_block(inst.type).build(inst.in_shape, inst.params)) for inst in plan.instances))
        self.spec = spec
        self.plan = plan


def build(spec: NetworkSpec, plan: ShapePlan | None = None) -> SpecNetwork:
    """Build the network; raises SpecError (from the shape plan) when a block does not fit."""
    return SpecNetwork(spec, plan or infer_shapes(spec))
