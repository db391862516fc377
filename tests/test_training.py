"""Training: real learning on offline data, the sanity checks, run records, the job queue."""

import json
import math
import os
import time
from pathlib import Path

import pytest
import torch

import explorer
from explorer.errors import ConfigError
from explorer.cli import main
from explorer.core.spec import NetworkSpec
from explorer.training.adapt import adapt_spec
from explorer.training.config import TrainConfig
from explorer.training.jobs import JobQueue
from explorer.training.loop import train
from explorer.training.runs import list_runs, read_metrics


def events(run_dir, kind=None):
    evs, _ = read_metrics(run_dir)
    return [e for e in evs if kind is None or e["event"] == kind]


@pytest.mark.slow
def test_lenet5_learns_mnist5k_on_the_cpu(tmp_path):
    cfg = TrainConfig(dataset="mnist5k", epochs=8, batch_size=64, lr=0.1, optimizer="sgd", device="cpu",
                      schedule="cosine", weight_decay=5e-4)
    summary = train(explorer.load_preset("lenet5"), cfg, tmp_path / "run")
    assert summary["status"] == "completed", summary
    assert summary["best_val_acc"] >= 0.95
    start = events(tmp_path / "run", "start")[0]
    assert any("zero-padded from 28x28 to 32x32" in n for n in start["notices"])
    first = events(tmp_path / "run", "step")[0]
    assert abs(first["loss"] - math.log(10)) < 0.5   # an untrained net guesses uniformly: ln(10) = 2.30
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"spec.json", "config.json", "metrics.jsonl", "checkpoint.safetensors", "summary.json"} <= files
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["params"] == 61_706 and saved["macs"] > 0 and saved["seconds"] > 0


@pytest.mark.slow
def test_shapes_are_learnable_by_the_two_conv_baseline(tmp_path):
    cfg = TrainConfig(dataset="shapes", epochs=8, batch_size=64, lr=2e-3, optimizer="adam", device="cpu",
                      weight_decay=0.0)
    summary = train(explorer.load_preset("twoconv"), cfg, tmp_path / "run")
    info = explorer.data.dataset_info("shapes")
    assert summary["status"] == "completed", summary
    assert summary["best_val_acc"] > 2.5 / info.num_classes  # well above chance
    spec = NetworkSpec.from_json((tmp_path / "run" / "spec.json").read_text())
    assert spec.input == (3, 32, 32)  # channels and size followed the dataset


def test_overfit_a_tiny_subset(tmp_path):
    cfg = TrainConfig(dataset="mnist5k", epochs=30, batch_size=20, lr=3e-3, optimizer="adam", overfit=20,
                      device="cpu", weight_decay=0.0, schedule="constant")
    summary = train(explorer.load_preset("twoconv"), cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["best_val_acc"] == 1.0


def test_huge_learning_rate_diverges_with_a_message(tmp_path):
    cfg = TrainConfig(dataset="digits", epochs=5, batch_size=32, lr=50.0, optimizer="sgd", device="cpu",
                      log_every=1)
    summary = train(explorer.load_preset("twoconv"), cfg, tmp_path / "run")
    assert summary["status"] == "diverged"
    assert "lower the learning rate" in summary["message"]
    assert events(tmp_path / "run")[-1]["status"] == "diverged"


def test_deterministic_on_the_cpu_for_a_seed(tmp_path):
    cfg = TrainConfig(dataset="digits", epochs=2, batch_size=32, lr=0.05, device="cpu", seed=3,
                      crop_padding=1)
    a = train(explorer.load_preset("twoconv"), cfg, tmp_path / "a")
    b = train(explorer.load_preset("twoconv"), cfg, tmp_path / "b")
    strip = lambda evs: [{k: v for k, v in e.items() if k not in ("time", "images_per_s", "eta_s", "elapsed_s")}
                         for e in evs if e["event"] in ("step", "epoch")]  # noqa: E731
    assert strip(events(tmp_path / "a")) == strip(events(tmp_path / "b"))
    assert a["best_val_acc"] == b["best_val_acc"]


def test_bad_configurations_fail_with_a_message(tmp_path):
    flat = NetworkSpec.from_dict({"input": [64], "blocks": [{"type": "linear", "out_features": 10}]})
    summary = train(flat, TrainConfig(dataset="digits", device="cpu"), tmp_path / "flat")
    assert summary["status"] == "failed" and "flat vector" in summary["message"]
    headless = NetworkSpec.from_dict({"input": [1, 28, 28], "blocks": [{"type": "conv", "out_channels": 4}]})
    summary = train(headless, TrainConfig(dataset="digits", device="cpu"), tmp_path / "headless")
    assert summary["status"] == "failed" and "end it with gap" in summary["message"]
    summary = train(explorer.load_preset("twoconv"), TrainConfig(dataset="nope", device="cpu"), tmp_path / "x")
    assert summary["status"] == "failed" and "nope" in summary["message"]
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig(lr=-1).validate()
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainConfig.from_dict({"epochz": 3})


def test_adapt_spec_rules():
    lenet = explorer.load_preset("lenet5")
    a = adapt_spec(lenet, 1, 28, 28, 10)
    assert a.resize == "pad" and a.image_size == (32, 32)
    b = adapt_spec(explorer.load_preset("twoconv"), 3, 32, 32, 5)
    assert b.resize == "none" and b.spec.input == (3, 32, 32) and b.spec.num_classes == 5
    assert explorer.analyze(b.spec).output_shape == (5,)


def test_adapt_spec_image_size_rule():
    """Automatic sizing: the dataset's size if the network works there, else the smallest size it
    works at (checked against a brute-force scan of infer_shapes), padded when that is close and
    even; the network's own size when starting from weights; an explicit size as asked."""
    from explorer.core.shapes import infer_shapes
    from explorer.core.spec import SpecError

    def works(spec, side):
        try:
            return infer_shapes(spec.with_input((1, side, side)).with_num_classes(10)).output_shape == (10,)
        except SpecError:
            return False

    for name in ("vgg11", "alexnet", "nin", "squeezenet1_0"):
        spec = explorer.load_preset(name)
        low = min(s for s in range(8, 225) if works(spec, s))
        a = adapt_spec(spec, 1, 8, 8, 10)
        assert a.image_size == (low, low) and a.resize == "resize" and a.spec.input == (1, low, low)
        assert "smallest size the network works at; its own is 224x224" in a.notices[-1]
        assert explorer.analyze(a.spec).output_shape == (10,)
        w = adapt_spec(spec, 1, 8, 8, 10, from_weights=True)
        assert w.image_size == (224, 224) and "as for weights learned at it" in w.notices[-1]
        r = adapt_spec(spec, 1, 8, 8, 10, from_weights=True, weights_size=(96, 96))   # a run trained at 96x96
        assert r.image_size == (96, 96) and "size its starting weights were trained at" in r.notices[-1]
    vgg = adapt_spec(explorer.load_preset("vgg16"), 1, 28, 28, 10)
    assert vgg.image_size == (32, 32) and vgg.resize == "pad"          # 28 -> 32: 2 pixels each side
    dense = adapt_spec(explorer.load_preset("densenet121"), 1, 28, 28, 10)
    assert dense.image_size == (30, 30) and dense.resize == "pad"      # works from 29; 30 pads evenly
    asked = adapt_spec(explorer.load_preset("vgg11"), 1, 28, 28, 10, size=(64, 64))
    assert asked.image_size == (64, 64) and asked.resize == "resize" and "asked for" in asked.notices[-1]
    with pytest.raises(ConfigError, match="does not work at 16x16.*smallest size it works at is 32x32"):
        adapt_spec(explorer.load_preset("vgg11"), 1, 28, 28, 10, size=(16, 16))
    with pytest.raises(ConfigError, match="image_size"):
        TrainConfig(image_size=2).validate()


def test_plan_follows_image_size(tmp_path):
    """plan_run sizes the run by TrainConfig.image_size; MACs follow the size."""
    from explorer.training.plan import plan_run

    vgg = explorer.load_preset("vgg11")
    auto = plan_run(vgg, TrainConfig(dataset="digits", device="cpu"), check_transfer=False)
    big = plan_run(vgg, TrainConfig(dataset="digits", device="cpu", image_size=64), check_transfer=False)
    assert auto.spec.input == (1, 32, 32) and big.spec.input == (1, 64, 64)
    assert big.macs > 2 * auto.macs        # 4x the pixels; the 7x7-pooled classifier costs the same
    bad = plan_run(vgg, TrainConfig(dataset="digits", device="cpu", image_size=20), check_transfer=False)
    assert not bad.ok and bad.blocked_at == "settings" and "20x20" in str(bad.error)


def test_cli_train_and_runs(tmp_path, capsys):
    code = main(["train", "--preset", "twoconv", "--dataset", "digits", "--epochs", "1", "--device", "cpu",
                 "--runs-dir", str(tmp_path), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)
    assert summary["status"] == "completed" and Path(summary["run_dir"]).parent == tmp_path
    assert main(["runs", "--runs-dir", str(tmp_path), "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 1 and runs[0]["status"] == "completed" and runs[0]["dataset"] == "digits"
    assert main(["train", "--preset", "twoconv", "--runs-dir", str(tmp_path)]) == 2
    assert "--dataset" in capsys.readouterr().err


def _quick(**kw):
    return TrainConfig(**{"dataset": "digits", "epochs": 1, "batch_size": 64, "device": "cpu", **kw})


@pytest.mark.slow
def test_queue_limit_cancel_crash_isolation_and_restart(tmp_path):
    queue = JobQueue(tmp_path, limits={"cpu": 1})
    spec = explorer.load_preset("twoconv")
    long = queue.submit(spec, _quick(max_seconds=60).with_changes(epochs=200))
    crash = queue.submit(spec, _quick(dataset="folder", data_root=str(tmp_path / "missing")))
    fine = [queue.submit(spec, _quick(seed=i)) for i in range(2)]
    assert [j.status for j in queue.jobs()] == ["running", "queued", "queued", "queued"]
    # wait until the long run writes steps, then cancel it
    deadline = time.time() + 120
    while not events(long.run_dir, "step") and time.time() < deadline:
        time.sleep(0.2)
    queue.cancel(long.id)
    running_at_once = []
    jobs = None
    while time.time() < deadline + 240:
        queue.refresh()
        queue.schedule()
        jobs = queue.jobs()
        running_at_once.append(sum(j.status == "running" for j in jobs))
        if all(j.status not in ("queued", "running") for j in jobs):
            break
        time.sleep(0.2)
    status = {j.id: j.status for j in jobs}
    assert max(running_at_once) <= 1
    assert status[long.id] == "cancelled"
    assert status[crash.id] == "failed"       # a failing run leaves the others alone
    assert [status[j.id] for j in fine] == ["completed", "completed"]
    assert {r.status for r in list_runs(tmp_path)} == {"cancelled", "failed", "completed"}

    # restart recovery: a job marked running whose process is gone becomes "interrupted"
    ghost = queue.submit(spec, _quick(max_seconds=60).with_changes(epochs=200))
    os.kill(queue.get(ghost.id).pid, 9)
    time.sleep(0.5)
    restarted = JobQueue(tmp_path, limits={"cpu": 1})
    restarted.refresh()
    assert restarted.get(ghost.id).status == "interrupted"
    assert json.loads((ghost.run_dir / "summary.json").read_text())["status"] == "interrupted"


@pytest.mark.parametrize("field", ["lr", "momentum", "weight_decay", "gamma", "label_smoothing", "val_fraction",
                                   "max_seconds"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0, 10**400])
def test_config_refuses_nan_infinite_and_negative_numbers_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field) as info:
        TrainConfig.from_dict({field: value})
    assert info.value.field == field


def test_a_finished_run_leaves_its_heartbeat_and_no_temporary_files(tmp_path):
    summary = train(explorer.load_preset("twoconv"), TrainConfig(dataset="digits", epochs=1, device="cpu"),
                    tmp_path / "run")
    assert summary["status"] == "completed"
    beat = json.loads((tmp_path / "run" / "heartbeat.json").read_text())
    assert beat["pid"] == os.getpid() and beat["started"] <= beat["time"]
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


# --- the optimizer table, the plan, run preparation, run names --------------------------------------
def test_the_optimizer_table_is_the_one_list_of_optimizers():
    import torch

    from explorer.core.analysis import OPTIMIZER_STATE
    from explorer.training.config import OPTIMIZER_TABLE, OPTIMIZERS

    # the core keeps its own name -> state count (it never imports training): they must agree
    assert {o.name: o.state for o in OPTIMIZER_TABLE} == OPTIMIZER_STATE
    assert OPTIMIZERS == ("sgd", "adam", "adamw")          # what a run trains with (the CLI's choices)
    params = [torch.nn.Parameter(torch.zeros(3))]
    for name, kind in (("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        opt = TrainConfig(optimizer=name, lr=0.02).make_optimizer(params)
        assert type(opt) is kind and opt.param_groups[0]["lr"] == 0.02
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="sgd-plain").validate()        # a memory-only row
    assert TrainConfig(momentum=0.0).memory_optimizer == "sgd-plain"
    assert TrainConfig(momentum=0.9).memory_optimizer == "sgd" and TrainConfig(optimizer="adam").memory_optimizer \
        == "adam"


def test_plan_run_blocks_with_the_stage_to_change_and_never_raises():
    from explorer.training.plan import plan_run

    twoconv = explorer.load_preset("twoconv")
    bad = plan_run(twoconv, TrainConfig(dataset="nope"))
    assert not bad.ok and bad.blocked_at == "settings" and "nope" in str(bad.error)
    folder = plan_run(twoconv, TrainConfig(dataset="folder"))
    assert folder.blocked_at == "dataset" and "needs a data folder" in str(folder.error)
    flat = NetworkSpec.from_dict({"input": [64], "blocks": [{"type": "linear", "out_features": 10}]})
    assert plan_run(flat, TrainConfig(dataset="digits")).blocked_at == "network"
    with pytest.raises(explorer.errors.SpecError, match="flat vector"):
        plan_run(flat, TrainConfig(dataset="digits")).raise_if_blocked()
    good = plan_run(twoconv, TrainConfig(dataset="digits", device="cpu", optimizer="adam", batch_size=32))
    assert good.ok and good.spec.input[0] == 1 and good.params == explorer.analyze(good.spec).totals.params
    # Adam keeps two state tensors per parameter, SGD with momentum one: the plan follows the table
    sgd = plan_run(twoconv, TrainConfig(dataset="digits", device="cpu", batch_size=32))
    assert good.memory.optimizer_state == 2 * sgd.memory.optimizer_state == 2 * sgd.memory.parameters
    assert any("flips" in w for w in plan_run(twoconv, TrainConfig(dataset="digits", flip=True)).warnings)


@pytest.mark.parametrize("overfit", [0, 20])
def test_inspect_reloads_the_validation_images_the_loop_trained_with(tmp_path, overfit):
    import torch

    from explorer.training.checkpoint import load_run_data
    from explorer.training.plan import plan_run
    from explorer.training.prepare import load_run_dataset, prepare_data

    cfg = TrainConfig(dataset="digits", epochs=1, device="cpu", overfit=overfit, seed=4)
    run = tmp_path / "run"
    assert train(explorer.load_preset("lenet5"), cfg, run)["status"] == "completed"
    dataset = load_run_dataset(cfg)
    plan = plan_run(explorer.load_preset("lenet5"), cfg, dataset=dataset.info)
    data = prepare_data(dataset, plan.adapted, cfg, torch.device("cpu"))
    reloaded = load_run_data(run)
    assert torch.equal(reloaded.x_val, data.x_val) and torch.equal(reloaded.y_val, data.y_val)
    assert reloaded.x_val.shape[-2:] == (32, 32) and len(reloaded.x_val) == (20 if overfit else 359)
    assert torch.equal(reloaded.mean, data.mean) and torch.equal(reloaded.std, data.std)


def test_run_folder_names_are_read_back_in_one_place(tmp_path):
    from explorer.training.runs import new_run_dir
    from explorer.training.status import parse_run_name, run_label, run_status, short_label

    run = new_run_dir(tmp_path, "My Net")
    name = parse_run_name(run.name)
    assert name.slug == "My-Net" and len(name.suffix) == 8 and len(name.started) == 19
    assert name.started.replace("-", "").replace(":", "").replace(" ", "-") == run.name[:15]
    assert short_label("20261122-030210-lenet5-52ecab12", "LeNet") == "LeNet 03:02:10 #52ec"
    assert short_label("my-own-folder", "LeNet") == "my-own-folder" and parse_run_name("x").started == ""
    (run / "config.json").write_text(json.dumps({"dataset": "digits", "lr": 0.05}))
    (run / "spec.json").write_text(json.dumps({"name": "twoconv"}))
    assert run_label(run) == f"twoconv · digits · lr 0.05 · {name.time} #{name.suffix[:4]}"
    # the queue's word first, then the run's own end event, then its folder
    assert run_status(run, "queued", {"status": "completed"}) == "queued"
    assert run_status(run, None, {"status": "diverged"}) == "diverged"
    assert run_status(run, None, None) == "queued"   # spec and config, nothing started yet


def test_every_command_and_page_resolves_the_runs_folder_alike(tmp_path, monkeypatch, capsys):
    from explorer.training.runs import runs_root
    from ui import compare_views, inspect_views, state, train_views

    monkeypatch.setenv("CNN_EXPLORER_RUNS", str(tmp_path))
    assert runs_root() == tmp_path
    assert runs_root("elsewhere") == Path("elsewhere")
    assert train_views.runs_dir is compare_views.runs_dir is inspect_views.runs_dir is state.runs_dir
    assert main(["train", "--preset", "twoconv", "--dataset", "digits", "--epochs", "1", "--device", "cpu",
                 "--format", "json"]) == 0
    assert Path(json.loads(capsys.readouterr().out)["run_dir"]).parent == tmp_path
    assert main(["runs", "--format", "json"]) == 0 and len(json.loads(capsys.readouterr().out)) == 1


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_run_records_the_plans_bf16_memory_and_stays_near_it(tmp_path):
    from explorer.training.plan import plan_run

    spec, cfg = explorer.load_preset("twoconv"), TrainConfig(dataset="digits", epochs=1, device="cuda")
    plan = plan_run(spec, cfg)
    assert (plan.device, plan.dtype, plan.channels_last) == ("cuda", "bfloat16", True)
    summary = train(spec, cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["predicted_train_memory_bytes"] == plan.memory_bytes
    assert events(tmp_path / "run", "start")[0]["predicted_train_memory_bytes"] == plan.memory_bytes


def test_plan_trains_small_networks_on_one_cpu_thread_only_when_openmp_waits_passively(monkeypatch, tmp_path):
    """explorer.training.plan.CPU_THREAD_MIN_MACS (bench/cpu_threads.py): the queue's runs of small
    networks take one thread; a shell's command and larger networks keep torch's default."""
    import torch

    from explorer.training.plan import CPU_THREAD_MIN_MACS, plan_run

    lenet, gapnet = explorer.load_preset("lenet5"), explorer.load_preset("gapnet")
    cfg = TrainConfig(dataset="mnist5k", device="cpu")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    small, large = plan_run(lenet, cfg), plan_run(gapnet, cfg)
    assert small.macs < CPU_THREAD_MIN_MACS < large.macs
    assert (small.cpu_threads, large.cpu_threads) == (1, None)
    assert small.channels_last and large.channels_last  # oneDNN's convolutions on the CPU too
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert plan_run(lenet, cfg).cpu_threads is None
    # the run takes one thread and gives this process its threads back, however it ends
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        summary = train(lenet, TrainConfig(dataset="digits", device="cpu", epochs=1, overfit=8), tmp_path / "r")
        start = next(e for e in map(json.loads, (tmp_path / "r" / "metrics.jsonl").read_text().splitlines())
                     if e["event"] == "start")
        assert summary["status"] == "completed" and start["threads"] == 1 and start["channels_last"] is True
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_reloaded_run_sees_the_size_it_trained_at(tmp_path):
    """A run folder's spec.json holds the fitted spec: Inspect's data follow its input size, not
    today's automatic rule (runs trained at another size, e.g. before the rule changed, stay exact)."""
    from explorer.training.checkpoint import load_run_data
    from explorer.training.runs import write_json_atomic

    spec = explorer.load_preset("twoconv").with_input((1, 40, 40)).with_num_classes(10)
    write_json_atomic(tmp_path / "spec.json", spec.to_dict())
    write_json_atomic(tmp_path / "config.json", TrainConfig(dataset="digits", device="cpu").to_dict())
    data = load_run_data(tmp_path)
    assert tuple(data.x_val.shape[1:]) == (1, 40, 40)
    write_json_atomic(tmp_path / "spec.json", spec.with_input((1, 8, 8)).to_dict())
    assert tuple(load_run_data(tmp_path).x_val.shape[1:]) == (1, 8, 8)


def test_the_gpu_memory_bench_says_it_needs_a_gpu_here(capsys):
    """bench/gpu_memory.py measures on CUDA only; without a GPU it exits 2 with one line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_memory", Path(__file__).resolve().parents[1] / "bench" / "gpu_memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the bench would measure")
    assert bench.main([]) == 2 and "needs a CUDA GPU" in capsys.readouterr().err


def test_init_schemes_set_the_variances_they_name():
    """He: conv weights N(0, 2 / fan_out), linear N(0, 0.01^2), biases 0; Xavier: variance
    2 / (fan_in + fan_out); batch norm untouched; default leaves the build as it was; the seed
    makes each repeatable."""
    from torch import nn
    from explorer.core.build import build
    from explorer.training.initialise import INIT_NAMES, apply_init
    from explorer.training.config import INIT_NAMES as CONFIG_INITS

    assert CONFIG_INITS == INIT_NAMES == ("default", "he", "xavier")
    spec = NetworkSpec.from_dict({"name": "t", "input": [64, 16, 16], "num_classes": 10, "blocks": [
        {"type": "conv", "out_channels": 128, "kernel": 3, "padding": 1}, {"type": "batchnorm"}, {"type": "relu"},
        {"type": "gap"}, {"type": "linear", "out_features": 10}]})

    def made(init: str, seed: int = 0):
        torch.manual_seed(seed)
        return apply_init(build(spec), init)

    conv, lin = (lambda m: next(x for x in m.modules() if isinstance(x, nn.Conv2d)),
                 lambda m: next(x for x in m.modules() if isinstance(x, nn.Linear)))
    he, xavier, default = made("he"), made("xavier"), made("default")
    fan_in, fan_out = 64 * 9, 128 * 9
    assert conv(he).weight.var().item() == pytest.approx(2 / fan_out, rel=0.05)
    assert lin(he).weight.std().item() == pytest.approx(0.01, rel=0.1) and not conv(he).bias.any()
    assert conv(xavier).weight.var().item() == pytest.approx(2 / (fan_in + fan_out), rel=0.05)
    assert conv(default).weight.var().item() == pytest.approx(1 / (3 * fan_in), rel=0.05)  # Kaiming uniform, a=sqrt(5)
    torch.manual_seed(0)
    assert torch.equal(conv(default).weight, conv(build(spec)).weight)
    assert torch.equal(conv(made("he")).weight, conv(he).weight) and not torch.equal(conv(made("he", 1)).weight,
                                                                                        conv(he).weight)
    bn = next(x for x in he.modules() if isinstance(x, nn.BatchNorm2d))
    assert bool((bn.weight == 1).all()) and not bn.bias.any()
    with pytest.raises(ConfigError, match="init"):
        TrainConfig(init="lecun").validate()


def test_the_loop_starts_from_the_configs_init(tmp_path):
    """A run with lr 1e-7 ends where it started: LeNet-5's last linear layer holds He's N(0, 0.01^2)
    weights, not PyTorch's default (uniform, std 1/sqrt(3 x 84) = 0.063)."""
    from safetensors.torch import load_file

    stds = {}
    for init in ("default", "he"):
        cfg = TrainConfig(dataset="digits", epochs=1, device="cpu", lr=1e-7, init=init, overfit=20)
        assert train(explorer.load_preset("lenet5"), cfg, tmp_path / init)["status"] == "completed"
        weights = load_file(tmp_path / init / "checkpoint.safetensors")
        last = [k for k, v in weights.items() if v.dim() == 2][-1]       # the classifier (10 x 84)
        stds[init] = weights[last].std().item()
    assert stds["he"] == pytest.approx(0.01, rel=0.25) and stds["default"] == pytest.approx(84 ** -0.5 / 3 ** 0.5,
                                                                                             rel=0.25)


@pytest.mark.slow
def test_the_plain_imagenet_family_default_trains_where_pytorchs_init_stays_at_chance(tmp_path):
    """SqueezeNet 1.0 (no batch norm) on the 8x8 digits, 5 epochs of the imagenet-plain family
    default (He init, Adam 3e-4; 59% here): well above chance; from PyTorch's default init: chance."""
    from explorer.search.recipes import _book

    book = _book()
    family = {**book.dataset_defaults.get("digits", {}), **book.families["squeezenet1_0"]["train"]}
    assert (family["init"], family["optimizer"]) == ("he", "adam")
    cfg = TrainConfig.from_dict({**family, "dataset": "digits", "device": "cpu", "epochs": 5})
    acc = {init: train(explorer.load_preset("squeezenet1_0"), cfg.with_changes(init=init),
                       tmp_path / init)["best_val_acc"] for init in ("he", "default")}
    assert acc["he"] > 0.35 and acc["default"] < 0.2, acc


def test_a_run_that_would_not_fit_the_machines_memory_is_refused_before_it_starts(monkeypatch):
    """The plan refuses a run whose predicted training memory is over the budget's share of the
    device's memory, saying what it needs and what to change; the owner can raise the share."""
    from explorer.training import plan as planning

    monkeypatch.setattr(planning, "device_memory_bytes", lambda device: 8 * 2**30)   # an 8 GiB server
    vgg = explorer.load_preset("vgg16")
    big = planning.plan_run(vgg, TrainConfig(dataset="mnist5k", device="cpu", image_size=224))
    assert not big.ok and big.blocked_at == "settings" and big.error.field == "batch_size"
    assert "needs about" in str(big.error) and "80% of this machine's 8.00 GiB" in str(big.error)
    assert "lower the batch size or the image size" in str(big.error)
    assert planning.plan_run(vgg, TrainConfig(dataset="mnist5k", device="cpu")).ok        # 32x32: fits
    monkeypatch.setenv("CNN_EXPLORER_MAX_TRAIN_MEMORY_PERCENT", "1000")
    assert planning.plan_run(vgg, TrainConfig(dataset="mnist5k", device="cpu", image_size=224)).ok
    monkeypatch.setenv("CNN_EXPLORER_MAX_TRAIN_MEMORY_PERCENT", "-3")
    assert not planning.plan_run(vgg, TrainConfig(dataset="mnist5k", device="cpu")).ok   # a bad setting: refused
    assert planning.device_memory_bytes("cpu") > 2**28                                   # this machine's RAM is read


def test_starting_from_a_run_trains_at_the_size_that_run_trained_at(tmp_path):
    """Automatic sizing with --init-from a run folder: the run's fitted input size (its spec.json)
    when the network works there; a missing source is a transfer setting to change."""
    from explorer.training.plan import plan_run
    from explorer.training.runs import write_json_atomic

    source = tmp_path / "source-run"
    source.mkdir()
    write_json_atomic(source / "spec.json", explorer.load_preset("vgg11").with_input((1, 48, 48)).to_dict())
    (source / "checkpoint.safetensors").write_bytes(b"")       # not read: the plan skips the weights check
    cfg = TrainConfig(dataset="digits", device="cpu", init_from=str(source))
    plan = plan_run(explorer.load_preset("vgg11"), cfg, check_transfer=False)
    assert plan.ok and plan.spec.input == (1, 48, 48)
    assert any("48x48 (the size its starting weights were trained at)" in n for n in plan.notices)
    gone = plan_run(explorer.load_preset("vgg11"), cfg.with_changes(init_from=str(tmp_path / "nope")),
                    check_transfer=False)
    assert not gone.ok and gone.blocked_at == "transfer"
