"""Looking inside a trained network: filters, feature maps, Grad-CAM/CAM, top-k, the confusion
matrix (explain), and decoding an uploaded image safely (images).

Never imports: streamlit or ui; tensors in, numpy arrays or PIL images out.
"""
