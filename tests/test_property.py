"""Random valid specs (hypothesis): the analysis agrees with a real forward pass, sum(numel),
fvcore's MACs, and a receptive field measured from input gradients."""

import torch
from fvcore.nn import FlopCountAnalysis
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from explorer import NetworkSpec, SpecError, analyze, build
from explorer.core.shapes import infer_shapes

small = st.integers(1, 8)
BLOCKS = st.one_of(
    st.builds(lambda o, k, s, p, d: {"type": "conv", "out_channels": o, "kernel": k, "stride": s, "padding": p,
                                     "dilation": d}, small, st.integers(1, 5), st.integers(1, 3),
              st.integers(0, 2), st.integers(1, 2)),
    st.builds(lambda k, s: {"type": "maxpool", "kernel": k, "stride": s}, st.integers(2, 3), st.integers(1, 2)),
    st.builds(lambda k: {"type": "avgpool", "kernel": k}, st.integers(2, 3)),
    st.just({"type": "batchnorm"}), st.just({"type": "relu"}), st.just({"type": "tanh"}),
    st.just({"type": "dropout", "p": 0.3}),
    st.builds(lambda o, s: {"type": "residual", "out_channels": o, "stride": s}, small, st.integers(1, 2)),
    st.builds(lambda r: {"type": "se", "reduction": r}, st.integers(1, 4)),
    st.builds(lambda a, b: {"type": "fire", "squeeze": a, "expand1x1": b, "expand3x3": b}, small, small),
    st.builds(lambda o, s: {"type": "invres", "out_channels": o, "stride": s, "expand_ratio": 2}, small,
              st.integers(1, 2)),
    st.builds(lambda o: {"type": "sepconv", "out_channels": o}, small),
    st.just({"type": "inception", "ch1x1": 2, "ch3x3red": 2, "ch3x3": 3, "ch5x5red": 2, "ch5x5": 2,
             "pool_proj": 2}),
)


def _spec_or_none(blocks, channels, size, head):
    tail = [{"type": "gap"}, {"type": "linear", "out_features": 5}] if head else []
    try:
        spec = NetworkSpec.from_dict({"input": [channels, size, size], "num_classes": 5,
                                      "blocks": blocks + tail})
        infer_shapes(spec)
    except SpecError:
        return None
    return spec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(BLOCKS, min_size=1, max_size=6), st.integers(1, 3), st.integers(6, 24), st.booleans())
def test_random_specs_match_forward_numel_and_fvcore(blocks, channels, size, head):
    spec = _spec_or_none(blocks, channels, size, head)
    assume(spec is not None)
    analysis = analyze(spec, batch=2)
    model = build(spec).eval()
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        out = model(x)
    assert analysis.output_shape == tuple(out.shape[1:])
    assert [r.output_shape for r in analysis.rows] == [i.out_shape for i in infer_shapes(spec).instances]
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    flops = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    reference = sum(v for k, v in flops.by_operator().items() if k in ("conv", "linear", "addmm"))
    assert analysis.totals.macs * 2 == reference


RF_BLOCKS = st.one_of(
    st.builds(lambda k, s, d: {"type": "conv", "out_channels": 2, "kernel": k, "stride": s, "dilation": d},
              st.integers(1, 5), st.integers(1, 2), st.integers(1, 2)),
    st.builds(lambda k, s: {"type": "avgpool", "kernel": k, "stride": s}, st.integers(2, 3), st.integers(1, 2)),
    st.just({"type": "relu"}),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(RF_BLOCKS, min_size=1, max_size=5))
def test_receptive_field_equals_the_gradient_footprint(blocks):
    """With positive weights and no padding, d(centre output)/d(input) is non-zero exactly on the
    receptive field, so its extent is an independent measurement."""
    spec = _spec_or_none(blocks, 1, 64, head=False)
    assume(spec is not None)
    last = analyze(spec).rows[-1]
    model = build(spec).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.0)
    x = torch.ones(1, 1, 64, 64, dtype=torch.double, requires_grad=True)
    out = model(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert (int(rows[-1] - rows[0]) + 1, int(cols[-1] - cols[0]) + 1) == last.receptive_field


def _works(spec, channels, side, classes):
    try:
        return infer_shapes(spec.with_input((channels, side, side)).with_num_classes(classes)).output_shape == (classes,)
    except SpecError:
        return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(BLOCKS, min_size=1, max_size=6), st.integers(1, 3), st.integers(6, 40), st.just(True),
       st.integers(1, 48), st.integers(2, 12))
def test_automatic_image_size_is_the_smallest_that_works(blocks, channels, size, head, data_side, classes):
    """explorer.training.adapt on random networks and dataset sizes, against a brute-force scan of
    shape inference: the chosen size works; it is the dataset's when that works, else the smallest
    working size from the dataset's up to the network's own (one more when that lets zero padding
    reach it), else the network's own; padding only for an even gap of at most 8 pixels."""
    from explorer.training.adapt import PAD_MAX, adapt_spec

    spec = _spec_or_none(blocks, channels, size, head)
    assume(spec is not None)
    try:
        a = adapt_spec(spec, channels, data_side, data_side, classes)
    except SpecError:   # the network works at no size it may take: so says the scan
        assert not _works(spec, channels, size, classes)
        event("works at no size")
        return
    side = a.image_size[0]
    event(f"resize: {a.resize}")     # --hypothesis-show-statistics: how often each way was taken
    assert a.image_size == (side, side) and a.spec.input == (channels, side, side)
    assert _works(spec, channels, side, classes)
    working = [s for s in range(data_side, max(size, data_side) + 1) if _works(spec, channels, s, classes)]
    if _works(spec, channels, data_side, classes):
        assert side == data_side and a.resize == "none"
    elif not working:
        assert side == size
    else:
        assert side in (working[0], working[0] + 1)
        assert side == working[0] or (side - data_side) % 2 == 0 and side - data_side <= PAD_MAX
    gap = side - data_side
    assert (a.resize == "pad") == (0 < gap <= PAD_MAX and gap % 2 == 0)
