"""Looking inside a trained network. Never imports: streamlit or ui; tensors in, numpy arrays or
PIL images out.

    layers    which layers can be looked at (the block-role lists), eval mode without in-place ops
    explain   Grad-CAM/CAM and top-k behind one `explain(model, x, method, target, layer)`
    features  feature maps, first-layer filters, both tiled with torchvision's make_grid
    evaluate  confusion matrix, per-class accuracy, mistakes, the pointing game
    pictures  colour scales, overlays, enlargement, the CLI's PNG
    sources   what to inspect: a run's checkpoint or an untrained network with offline images
    images    decoding an uploaded image safely
"""
