"""The core: what a network is and what it costs, computed without training it.

Owns: the spec format and its validation (spec), the block registry and every block type
(registry, blocks/: schema, shape formula, builder, formula text, labels, role, export,
resizing), the cost budget (budget), building a spec into torch modules (build), the meta-device
trace and its contract with torch internals (trace), the per-layer analysis and training-memory
prediction (analysis), text renderings (report, describe), export to source/ONNX (export), share
links (share), presets/ and torchvision models as analysis sources (tvmodels, weights).

Never imports: streamlit, ui, or the other explorer packages (data, training, search, interpret,
compare, charts, classroom); they build on the core, never the other way round.
"""
