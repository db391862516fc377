"""Every figure: Plotly charts and the Graphviz diagram, made from data the other packages compute.

Owns: analysis (the Build page's charts), compare (Compare and Zoo), training (live curves and
the curve data folded from metrics events), search (the Sweep page), inspect (the Inspect page's
pictures and scores), diagram (the network as DOT). Numbers are printed with explorer.units.

Never imports: streamlit or ui; figures take plain data and return a figure or text.
"""
