"""Zoo page: the classic CNNs as torchvision publishes them, and why they are shaped that way.

Data flow: torchvision's weight metadata (offline: params, GMACs, ImageNet top-1/top-5) ->
explorer.compare.zoo.zoo_models -> tabs: the accuracy-against-operations bubble chart (Canziani et al.)
with the table; one model opened (a preset that mirrors it loads into the builder, any other is
analysed here on the meta device); two models' activations and parameters along the depth; and
the live explainers (3x3 stacks, the 1x1 bottleneck, depthwise-separable convs), all computed by
explorer.analyze. Everything drawn lives in ui.zoo_views.
"""

from ui import state, views
from ui import zoo_views as zv

state.init()
zv.follow_to_builder()

with views.guarded("the page"):
    zv.header()
    models = zv.models()
    zv.tabs(models)

state.sync_url()
