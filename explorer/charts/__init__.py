"""Every figure: Plotly charts and the Graphviz diagram, made from data the other packages compute.

Owns: analysis (the Build page's charts), compare (Compare and Zoo), training (live curves and
the curve data folded from metrics events), search (the Sweep page), diagram (the network as DOT).

Never imports: streamlit or ui; figures take plain data and return a figure or text.
"""
