"""Transfer learning: loading a run's or torchvision's weights (adapted head and channels),
freezing, discriminative learning rates, the frozen-aware memory prediction, train-per-class,
the CLI flags, lineage in the runs list and Compare, the course's table, and pretrained
weights in the zoo (a random state dict saved under torchvision's file name, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import explorer
from explorer.cli import main
from explorer.core.build import build
from explorer.core.spec import spec_from_dict
from explorer.errors import ConfigError, RunError
from explorer.training import transfer
from explorer.training.prepare import per_class_indices
from explorer.training.config import TrainConfig
from explorer.training.loop import train
from explorer.training.runs import list_runs, read_metrics, write_json_atomic

LENET = explorer.load_preset("lenet5")
# conv, bn, relu, conv, bn, relu, gap, linear: blocks 1..8 as the Build page numbers them
BN_NET = spec_from_dict({"name": "bnnet", "input": [1, 16, 16], "num_classes": 10, "blocks": [
    {"type": "conv", "out_channels": 8, "kernel": 3, "padding": 1}, {"type": "batchnorm"}, {"type": "relu"},
    {"type": "conv", "out_channels": 16, "kernel": 3, "padding": 1}, {"type": "batchnorm"}, {"type": "relu"},
    {"type": "gap"}, {"type": "linear", "out_features": 10}]})


def fake_run(folder: Path, spec, dataset: str = "digits", seed: int = 0) -> tuple[Path, dict]:
    """A run folder as the loop writes it (spec, config, checkpoint, summary), random weights."""
    torch.manual_seed(seed)
    model = build(spec)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    folder.mkdir(parents=True)
    write_json_atomic(folder / "spec.json", spec.to_dict())
    write_json_atomic(folder / "config.json", TrainConfig(dataset=dataset).to_dict())
    write_json_atomic(folder / "summary.json", {"status": "completed", "best_val_acc": 0.5})
    save_file(state, str(folder / "checkpoint.safetensors"))
    return folder, state


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory) -> Path:
    """A real lenet5 run: 1 epoch on digits (20 images per class)."""
    run = tmp_path_factory.mktemp("runs") / "source"
    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=32, lr=0.05, device="cpu", train_per_class=20)
    assert train(LENET, cfg, run)["status"] == "completed"
    return run


# --- loading --------------------------------------------------------------------------------------
def test_load_from_a_run_with_the_same_class_count(pretrained_run):
    from safetensors.torch import load_file

    model = build(LENET)
    notices = transfer.load_init(model, str(pretrained_run))
    saved = load_file(str(pretrained_run / "checkpoint.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert model.pretrained_keys == frozenset(saved)
    assert "10 of 10 weight entries loaded" in notices[0]


def test_a_different_class_count_gets_a_new_head(tmp_path):
    source, state = fake_run(tmp_path / "src", LENET)
    model = build(LENET.with_num_classes(5))
    fresh = model.linear2.weight.detach().clone()
    notices = transfer.load_init(model, str(source))
    assert torch.equal(model.conv1.weight, state["conv1.weight"]) and torch.equal(model.linear1.bias,
                                                                                  state["linear1.bias"])
    assert torch.equal(model.linear2.weight, fresh) and model.linear2.weight.shape == (5, 84)
    assert "linear2.weight" not in model.pretrained_keys and "linear1.weight" in model.pretrained_keys
    assert any("linear2 (the classifier head) starts from random weights: 5 classes" in n for n in notices)


def test_one_channel_from_an_rgb_first_layer_sums_the_filters(tmp_path):
    source, state = fake_run(tmp_path / "src", LENET.with_input((3, 32, 32)))
    model = build(LENET)                                         # 1x32x32
    notices = transfer.load_init(model, str(source))
    w = state["conv1.weight"]                                    # (6, 3, 5, 5)
    assert torch.allclose(model.conv1.weight, w[:, 0:1] + w[:, 1:2] + w[:, 2:3])
    grey = torch.rand(2, 1, 32, 32)                              # the same response as (x, x, x) before
    rgb_model = build(LENET.with_input((3, 32, 32)))
    rgb_model.load_state_dict(state)
    assert torch.allclose(model.conv1(grey), rgb_model.conv1(grey.repeat(1, 3, 1, 1)), atol=1e-5)
    assert any("summed over channels" in n for n in notices)


def test_rgb_from_a_grey_first_layer_shares_the_filter(tmp_path):
    source, state = fake_run(tmp_path / "src", LENET)
    model = build(LENET.with_input((3, 32, 32)))
    transfer.load_init(model, str(source))
    assert torch.allclose(model.conv1.weight, state["conv1.weight"].repeat(1, 3, 1, 1) / 3)


def test_layers_that_do_not_match_are_named(tmp_path):
    source, _ = fake_run(tmp_path / "src", explorer.load_preset("twoconv"))
    with pytest.raises(RunError, match=r"layers of run src do not match this network \(6 entries against 10; run src lacks conv3"):
        transfer.load_init(build(LENET), str(source))
    blocks = [b.to_dict() for b in LENET.blocks]
    blocks[3]["out_channels"] = 32                                   # conv2: 16 -> 32 filters
    source2, _ = fake_run(tmp_path / "src2", spec_from_dict({**LENET.to_dict(), "blocks": blocks}))
    with pytest.raises(RunError, match=r"conv2.weight has shape 32x6x5x5 but this network's needs 16x6x5x5"):
        transfer.load_init(build(LENET), str(source2))


def test_a_missing_or_unfinished_source_says_what_to_do(tmp_path):
    with pytest.raises(RunError, match="no run folder or weights file"):
        transfer.read_source(str(tmp_path / "nope"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "spec.json").write_text(LENET.to_json())
    with pytest.raises(RunError, match="not a run with a checkpoint"):
        transfer.read_source(str(tmp_path / "half"))
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(RunError, match="not a weights file"):
        transfer.read_source(str(tmp_path / "w.txt"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_payload_is_refused(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Payload()}))
    with pytest.raises(RunError, match="cannot be loaded safely") as e:
        transfer.load_init(build(LENET), str(path))
    assert "weights_only" not in str(e.value)   # never the advice to load it unsafely


# --- freezing and learning rates --------------------------------------------------------------
def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_freeze_features_trains_only_the_head_and_keeps_bn_statistics():
    model = build(BN_NET)
    transfer.apply_freeze(model, TrainConfig(freeze="features"))
    assert _trainable(model) == {"linear1.weight", "linear1.bias"}
    model.train()
    assert not model.batchnorm1.training and not model.batchnorm2.training and model.linear1.training
    before = model.batchnorm1.running_mean.clone()
    model(torch.randn(4, 1, 16, 16) + 3)
    assert torch.equal(model.batchnorm1.running_mean, before)   # eval mode: the statistics stay


def test_freeze_up_to_a_block_number():
    model = build(BN_NET)
    notices = transfer.apply_freeze(model, TrainConfig(freeze="2"))   # conv1 and batchnorm1
    assert _trainable(model) == {"conv2.weight", "conv2.bias", "batchnorm2.weight", "batchnorm2.bias",
                                 "linear1.weight", "linear1.bias"}
    model.train()
    assert not model.batchnorm1.training and model.batchnorm2.training
    assert "blocks 1-2 keep their weights" in notices[0]
    model = build(BN_NET)
    transfer.apply_freeze(model, TrainConfig(freeze_bn=True))
    model.train()
    assert len(_trainable(model)) == 10 and not model.batchnorm2.training   # all weights still train


def test_freezing_the_head_is_refused():
    with pytest.raises(ConfigError, match="would freeze the classifier head.*block 8 of 8.*at most up to block 7"):
        transfer.frozen_blocks(BN_NET, "8")
    assert transfer.frozen_blocks(BN_NET, "features") == 7 and transfer.frozen_blocks(LENET, "features") == 11
    assert transfer.frozen_blocks(BN_NET, "none") == 0


def test_param_groups_give_loaded_layers_a_lower_rate(tmp_path):
    source, _ = fake_run(tmp_path / "src", LENET)
    model = build(LENET.with_num_classes(5))
    cfg = TrainConfig(lr=0.1, init_from=str(source), pretrained_lr_scale=0.1)
    transfer.prepare(model, cfg)
    opt = cfg.make_optimizer(transfer.param_groups(model, cfg))   # as the loop makes it (loop._build)
    assert [g["lr"] for g in opt.param_groups] == [0.1, pytest.approx(0.01)]
    head = {id(model.linear2.weight), id(model.linear2.bias)}
    assert {id(p) for p in opt.param_groups[0]["params"]} == head
    assert len(opt.param_groups[1]["params"]) == 8
    probe = build(LENET)
    transfer.prepare(probe, cfg.with_changes(freeze="features"))
    groups = transfer.param_groups(probe, cfg.with_changes(freeze="features"))
    assert len(groups) == 1 and {id(p) for p in groups[0]["params"]} == {id(probe.linear2.weight),
                                                                          id(probe.linear2.bias)}
    assert groups[0]["lr"] == pytest.approx(0.01)                 # the head was loaded too (same classes)


# --- memory ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer,states", [("sgd", 1), ("adam", 2)])
def test_frozen_memory_drops_gradients_and_optimizer_state_exactly(optimizer, states):
    spec = explorer.load_preset("resnet18").with_input((3, 64, 64)).with_num_classes(10)
    cost = transfer.frozen_cost(spec, TrainConfig(freeze="features", optimizer=optimizer, batch_size=8))
    frozen_params = cost.params - cost.trainable_params
    assert cost.trainable_params == 512 * 10 + 10
    assert cost.full.gradients - cost.frozen.gradients == 4 * frozen_params
    assert cost.full.optimizer_state - cost.frozen.optimizer_state == 4 * states * frozen_params
    assert cost.frozen.saved_activations < cost.full.saved_activations / 100   # nothing before the head is saved
    assert cost.frozen.parameters == cost.full.parameters
    half = transfer.frozen_cost(spec, TrainConfig(freeze="5", batch_size=8))  # conv1, bn, relu, maxpool, residual1
    assert cost.frozen.total < half.frozen.total < half.full.total


# --- fewer images, the loop, lineage ----------------------------------------------------------------
def test_per_class_indices_are_stratified_and_seeded():
    y = np.repeat(np.arange(4), [10, 3, 7, 10])
    idx = per_class_indices(y, 5, seed=1)
    assert np.bincount(y[idx]).tolist() == [5, 3, 5, 5] and len(set(idx)) == len(idx)
    assert np.array_equal(idx, per_class_indices(y, 5, seed=1))
    assert not np.array_equal(np.sort(idx), np.sort(per_class_indices(y, 5, seed=2)))


def test_a_linear_probe_run_keeps_its_features_and_records_its_lineage(pretrained_run, tmp_path):
    from safetensors.torch import load_file

    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=16, lr=0.05, device="cpu", train_per_class=5,
                      init_from=str(pretrained_run), freeze="features", weight_decay=0.0)
    summary = train(LENET, cfg, tmp_path / "probe")
    assert summary["status"] == "completed", summary
    assert summary["start"] == f"linear probe <- {pretrained_run.name}" and summary["trainable_params"] == 850
    events, _ = read_metrics(tmp_path / "probe")
    assert next(e for e in events if e["event"] == "start")["train_size"] == 50     # 5 per class, 10 classes
    before, after = (load_file(str(p / "checkpoint.safetensors")) for p in (pretrained_run, tmp_path / "probe"))
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("linear2."))
    assert not torch.equal(before["linear2.weight"], after["linear2.weight"])


def test_lineage_in_runs_compare_and_inspect(pretrained_run, tmp_path, capsys):
    from explorer.compare import results as cmp
    from explorer.training.checkpoint import load_run_data, load_run_model

    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=32, lr=0.02, device="cpu", train_per_class=10,
                      init_from=str(pretrained_run), freeze="3", pretrained_lr_scale=0.1, freeze_bn=True)
    assert train(LENET, cfg, tmp_path / "b-tuned")["status"] == "completed"
    assert train(LENET, TrainConfig(dataset="digits", epochs=1, device="cpu", train_per_class=10),
                 tmp_path / "a-scratch")["status"] == "completed"
    frame = cmp.runs_frame(list_runs(tmp_path)).set_index(cmp.RUN)
    assert frame.loc["a-scratch", cmp.START] == "scratch"
    assert frame.loc["b-tuned", cmp.START] == f"frozen 1-3 <- {pretrained_run.name}"
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert f"frozen 1-3 <- {pretrained_run.name}" in capsys.readouterr().out
    spec, model = load_run_model(tmp_path / "b-tuned")               # Inspect reloads a frozen-and-tuned run
    data = load_run_data(tmp_path / "b-tuned")
    assert len(data.x_val) == 359 and model(data.normalize(data.x_val[:4])).shape == (4, 10)


# --- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize("flags,message", [
    (["--freeze", "bogus"], "freeze must be none, features or a block number"),
    (["--freeze", "12"], "would freeze the classifier head"),
    (["--freeze", "0"], "freeze must be"),
    (["--pretrained-lr-scale", "0"], "pretrained_lr_scale must be in"),
    (["--pretrained-lr-scale", "nan"], "pretrained_lr_scale must be a finite number"),
    (["--train-per-class", "-1"], "train_per_class must be"),
    (["--init-from", "no-such-run"], "no run folder or weights file"),
])
def test_bad_transfer_flags_exit_2_before_anything_starts(flags, message, tmp_path, capsys):
    code = main(["train", "--preset", "lenet5", "--dataset", "digits", "--epochs", "1", "--runs-dir",
                 str(tmp_path), *flags])
    assert code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())                               # no run folder was made


def test_an_init_from_whose_layers_do_not_match_exits_2(tmp_path, capsys):
    source, _ = fake_run(tmp_path / "src", explorer.load_preset("twoconv"))
    code = main(["train", "--preset", "lenet5", "--dataset", "digits", "--runs-dir", str(tmp_path / "runs"),
                 "--init-from", str(source)])
    assert code == 2 and "do not match this network" in capsys.readouterr().err


def test_config_fields_round_trip_and_validate():
    cfg = TrainConfig.from_dict({"init_from": "/x/run", "freeze": "4", "pretrained_lr_scale": 0.1,
                                 "freeze_bn": True, "train_per_class": 30})
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg
    for bad in ({"freeze": 3}, {"freeze_bn": "yes"}, {"init_from": ""}, {"pretrained_lr_scale": 1.5},
                {"train_per_class": 2.5}):
        with pytest.raises(ConfigError):
            TrainConfig.from_dict(bad)


# --- the course's table ----------------------------------------------------------------------------
def test_the_course_table_recommends_a_setting_per_cell():
    spec = explorer.load_preset("resnet18")
    probe = transfer.recommend(spec, 100, similar=True)
    assert (probe.setting, probe.freeze) == ("linear probe", "features")
    early = transfer.recommend(spec, 100, similar=False)
    late = transfer.recommend(spec, 5_000, similar=True)
    assert early.setting == "classifier from earlier layers" and late.setting == "fine-tune more layers"
    assert 0 < int(early.freeze) < int(late.freeze) < transfer.head_block(spec) + 1
    full = transfer.recommend(spec, 5_000, similar=False)
    assert (full.freeze, full.pretrained_lr_scale) == ("none", 0.1)
    for r in (probe, early, late, full):                            # every setting is a valid config
        transfer.frozen_blocks(spec, TrainConfig(freeze=r.freeze).freeze)
    assert transfer.images_per_class("mnist5k", TrainConfig(), 10) == 400
    assert transfer.images_per_class("digits", TrainConfig(train_per_class=30), 10) == 30
    assert transfer.images_per_class("folder", TrainConfig(), 3) is None
    assert transfer.guess_similar("mnist5k", "digits") is True and transfer.guess_similar("mnist5k", "cifar10") is False


# --- torchvision weights on disk --------------------------------------------------------------------
@pytest.fixture()
def tv_cache(tmp_path, monkeypatch):
    """torch's cache in tmp holding resnet18's file name with random weights (never downloaded)."""
    import torchvision.models as tvm

    from explorer.compare import pretrained

    monkeypatch.delenv(pretrained.WEIGHTS_DIR_ENV, raising=False)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    state = tvm.resnet18(weights=None).state_dict()
    path = tmp_path / "hub" / "checkpoints" / pretrained.weights_file_name("resnet18")
    torch.save(state, path)
    yield path, state
    torch.hub.set_dir(old)


def test_zoo_opens_pretrained_weights_found_in_the_cache(tv_cache):
    import io

    import torchvision.models as tvm
    from PIL import Image

    from explorer.compare import pretrained

    path, state = tv_cache
    assert path.name == "resnet18-f37072fd.pth" and pretrained.available() == {"resnet18": path}
    p = pretrained.load_pretrained("resnet18")
    reference = tvm.resnet18(weights=None)
    reference.load_state_dict(state)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(p.model(x), reference.eval()(x), atol=1e-4)
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    result = pretrained.classify(p, buf.getvalue())
    assert len(p.categories) == 1000 and result.top5[0][1] == p.categories[result.top5[0][0]]
    assert [c for c, _, _ in result.top5] == list(np.argsort(-pretrained_probs(p, result.image))[:5])
    assert result.heat.shape == (224, 224) and result.layer == "residual8"


def pretrained_probs(p, image):
    mean, std = torch.tensor(p.mean).view(1, 3, 1, 1), torch.tensor(p.std).view(1, 3, 1, 1)
    with torch.no_grad():
        return torch.softmax(p.model((image[None].float() / 255 - mean) / std), 1)[0].numpy()


def test_no_weights_on_disk_means_none_offered(tmp_path, monkeypatch):
    from explorer.compare import pretrained

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty"))
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path / "also-empty"))
    try:
        assert pretrained.available() == {}
        with pytest.raises(RunError, match="resnet18-f37072fd.pth is not in"):
            pretrained.load_pretrained("resnet18")
    finally:
        torch.hub.set_dir(old)


def test_a_torchvision_file_initialises_a_one_channel_ten_class_resnet(tv_cache):
    path, state = tv_cache
    model = build(explorer.load_preset("resnet18").with_input((1, 64, 64)).with_num_classes(10))
    notices = transfer.load_init(model, str(path))
    assert torch.allclose(model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(model.residual8.conv2.weight, state["layer4.1.conv2.weight"])
    assert model.linear1.weight.shape == (10, 512) and "linear1.weight" not in model.pretrained_keys
    assert any("classifier head" in n for n in notices) and any("summed over channels" in n for n in notices)


# --- the Train page's panel -----------------------------------------------------------------------
def test_train_page_places_the_dataset_in_the_course_table_and_applies_a_cell(tmp_path):
    from streamlit.testing.v1 import AppTest

    from ui import state

    runs = tmp_path / "runs"
    fake_run(runs / "20260101-000000-lenet5-src", LENET, dataset="mnist5k")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.session_state[state.RUNS_DIR] = str(runs)
    at.run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="w.tr.dataset").select("digits").run()
    source = at.selectbox(key=state.TL_SOURCE)
    assert source.options[0].startswith("Random weights") and "lenet5-src" in source.options[1]
    source.select(source.options[1]).run()
    assert not at.exception, [e.value for e in at.exception]
    cfg = at.session_state[state.TRAIN_CONFIG]
    assert cfg.init_from == str((runs / "20260101-000000-lenet5-src").resolve())
    assert any("10 of 10 weight entries loaded" in c.value for c in at.caption)
    assert any("about 143 training images per class — small" in c.value for c in at.caption)   # 1,438 / 10
    assert at.radio(key=state.TL_SIMILAR).value == "similar"            # mnist5k -> digits: both digits
    at.button(key=state.tl_use(True, True)).click().run()           # little data, similar: linear probe
    assert at.session_state[state.TRAIN_CONFIG].freeze == "features"
    assert next(m for m in at.metric if m.label == "Trainable parameters").value == "850"
    at.button(key=state.tl_use(False, False)).click().run()           # lots, different: fine-tune all
    cfg = at.session_state[state.TRAIN_CONFIG]
    assert (cfg.freeze, cfg.pretrained_lr_scale) == ("none", 0.1) and not at.exception


def test_zoo_page_classifies_an_upload_with_weights_from_the_cache(tv_cache):
    import io

    from PIL import Image
    from streamlit.testing.v1 import AppTest

    from ui import state
    from ui import zoo_views as zv

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.switch_page("pages/zoo.py").run()
    at.session_state[state.ZOO_VIEW] = "Open a model"
    at.run()
    at.selectbox(key=zv.MODEL).select("resnet18").run()
    assert any("Weights found" in c.value and "resnet18-f37072fd.pth" in c.value for c in at.caption)
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    at.file_uploader(key=state.W_ZOO + "pre_upload").set_value(("photo.png", buf.getvalue(), "image/png")).run()
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    top5 = at.dataframe[0].value
    assert len(top5) == 5 and top5["Probability (%)"].is_monotonic_decreasing
    from explorer.compare import pretrained

    assert set(top5["Class"]) <= set(pretrained.load_pretrained("resnet18").categories)
