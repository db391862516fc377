"""The command line: formats, exports and errors (exit 2, a message, never a traceback)."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import explorer
from explorer.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_table_and_json(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "lenet5" in out
    code, out, _ = run(capsys, "presets", "--format", "json")
    names = [p["name"] for p in json.loads(out)]
    assert names == explorer.preset_names()


def test_analyze_json_equals_the_python_api(capsys):
    code, out, _ = run(capsys, "analyze", "--preset", "lenet5", "--format", "json", "--batch", "4")
    assert code == 0
    assert json.loads(out) == explorer.analyze(explorer.load_preset("lenet5"), batch=4).to_dict()
    layer = json.loads(out)["layers"][0]
    for key in ("name", "type", "output_shape", "params", "trainable_params", "macs", "activations",
                "activation_bytes", "receptive_field"):
        assert key in layer
    totals = json.loads(out)["totals"]
    for key in ("params", "trainable_params", "macs", "flops", "activations", "param_bytes",
                "activation_bytes", "train_memory_bytes"):
        assert key in totals


def test_memtable_reproduces_the_cs231n_vgg16_table(capsys):
    code, out, _ = run(capsys, "analyze", "--torchvision", "vgg16", "--format", "memtable")
    assert code == 0
    assert "CONV3-64:" in out and "[224x224x64]" in out
    assert "224*224*64=3.2M" in out
    assert "(3*3*3)*64 = 1,728" in out
    assert "7*7*512*4096 = 102,760,448" in out   # the first FC layer, written as the slide writes it
    assert "TOTAL memory: 15,237,608 values (15.2M)" in out  # the slide's "24M" is wrong
    assert "138,357,544" in out


def test_csv_has_one_row_per_layer(capsys):
    code, out, _ = run(capsys, "analyze", "--preset", "lenet5", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == len(explorer.analyze(explorer.load_preset("lenet5")).rows)
    assert rows[0]["output_shape"] == "6x28x28" and rows[0]["params"] == "156"


def test_table_and_input_override(capsys):
    code, out, _ = run(capsys, "analyze", "--torchvision", "resnet18", "--input", "3,64,64", "--batch", "8")
    assert code == 0 and "11,689,512" in out and "batch 8" in out


def test_num_classes_follows_the_last_layer(capsys):
    code, out, _ = run(capsys, "analyze", "--preset", "lenet5", "--num-classes", "5", "--format", "json")
    assert json.loads(out)["output_shape"] == [5]


@pytest.mark.parametrize("argv, words", [
    (["analyze", "--preset", "nope"], "unknown preset 'nope'"),
    (["analyze", "--spec", "/no/such/file.json"], "no spec file"),
    (["analyze", "--torchvision", "vgg17"], "Did you mean vgg19 or vgg16"),
    (["analyze", "--torchvision", "vgg16", "--input", "3,8,8"], "does not run on a 3x8x8 input"),
    (["export", "--preset", "lenet5", "--to", "onnx"], "-o FILE"),
])
def test_errors_exit_2_with_a_message(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and words in err and "Traceback" not in err


def test_bad_spec_files(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{bad json")
    code, _, err = run(capsys, "analyze", "--spec", str(bad))
    assert code == 2 and "not valid JSON" in err
    bad.write_text(json.dumps({"input": [3, 7, 7], "blocks": [{"type": "conv", "kernel": 9}]}))
    code, _, err = run(capsys, "analyze", "--spec", str(bad))
    assert code == 2 and "block 0 (conv), field 'kernel'" in err


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["analyze", "--preset", "lenet5", "--input", "3,a,b"])
    assert info.value.code == 2
    assert "expected C,H,W" in capsys.readouterr().err


def test_export_pytorch_runs_standalone(tmp_path, capsys):
    target = tmp_path / "net.py"
    code, _, _ = run(capsys, "export", "--preset", "lenet5", "--to", "pytorch", "-o", str(target))
    assert code == 0
    result = subprocess.run([sys.executable, str(target)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "output (2, 10) params 61706" in result.stdout


def test_export_json_round_trips(tmp_path, capsys):
    target = tmp_path / "spec.json"
    run(capsys, "export", "--preset", "lenet5", "--to", "json", "-o", str(target))
    code, out, _ = run(capsys, "analyze", "--spec", str(target), "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["params"] == 61_706


@pytest.mark.slow
def test_export_onnx_runs_in_onnxruntime(tmp_path, capsys):
    import onnxruntime

    target = tmp_path / "net.onnx"
    code, _, err = run(capsys, "export", "--preset", "twoconv", "--to", "onnx", "-o", str(target))
    assert code == 0, err
    session = onnxruntime.InferenceSession(str(target))
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype("float32")
    (logits,) = session.run(None, {"image": x})
    assert logits.shape == (3, 10)
    assert np.isfinite(logits).all()


def test_module_entry_point_and_help():
    for args in (["--help"], ["analyze", "--help"], ["export", "--help"], ["presets", "--help"]):
        result = subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0 and "usage:" in result.stdout
    result = subprocess.run([sys.executable, "-m", "explorer", "analyze", "--preset", "nope"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_torch_is_unaffected_by_analysis():
    explorer.analyze(explorer.load_preset("lenet5"))
    assert torch.empty(1).device.type == "cpu"  # no leaked default-device context


def test_vgg16_preset_memtable_equals_torchvision_memtable(capsys):
    _, from_preset, _ = run(capsys, "analyze", "--preset", "vgg16", "--format", "memtable")
    _, from_torchvision, _ = run(capsys, "analyze", "--torchvision", "vgg16", "--format", "memtable")
    assert "TOTAL memory: 15,237,608 values" in from_preset
    strip = lambda text: [line.split("params:")[0].split()[1:] for line in text.splitlines()  # noqa: E731
                          if "memory:" in line and "TOTAL" not in line]
    assert strip(from_preset) == strip(from_torchvision)


def _train_argv(runs, *extra):
    return ["train", "--preset", "lenet5", "--dataset", "digits", "--epochs", "1", "--device", "cpu",
            "--runs-dir", str(runs), *extra]


@pytest.mark.parametrize("extra, words", [
    (["--dataset", "nope"], "Unknown dataset 'nope'"),
    (["--dataset", "folder", "--data-root", "/nonexistent/images"], "data-root"),
    (["--dataset", "folder"], "data-root"),
    (["--seed", "-1"], "seed"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--lr", "inf"], "lr must be a finite number"),
    (["--lr", "-0.1"], "lr must be positive"),
    (["--momentum", "-0.5"], "momentum"),
    (["--weight-decay", "nan"], "weight_decay"),
    (["--max-seconds", "inf"], "max_seconds"),
    (["--max-seconds", "-3"], "max_seconds"),
    (["--label-smoothing", "2"], "label_smoothing"),
    (["--crop-padding", "-1"], "crop_padding"),
    (["--overfit", "-5"], "overfit"),
])
def test_bad_train_input_exits_2_and_leaves_no_run_folder(capsys, tmp_path, extra, words):
    runs = tmp_path / "runs"
    code, _, err = run(capsys, *_train_argv(runs, *extra))
    assert code == 2 and words in err and "Traceback" not in err
    assert not runs.exists() or list(runs.iterdir()) == []


def test_bad_train_config_files_exit_2_and_leave_no_run_folder(capsys, tmp_path):
    runs = tmp_path / "runs"
    for content, words in ((b"\x00\xff binary", "not valid JSON"), (b"", "empty"), (b"[1, 2]", "JSON object"),
                           (b'{"lr": "fast"}', "lr has the wrong type"), (b'{"epochz": 1}', "unknown training")):
        config = tmp_path / "config.json"
        config.write_bytes(content)
        code, _, err = run(capsys, "train", "--preset", "lenet5", "--config", str(config), "--runs-dir", str(runs))
        assert code == 2 and words in err, err
    code, _, err = run(capsys, "train", "--preset", "lenet5", "--config", str(tmp_path / "none.json"),
                       "--runs-dir", str(runs))
    assert code == 2 and "missing" in err
    assert not runs.exists() or list(runs.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_train_on_cuda_without_a_gpu_exits_2_and_leaves_no_run_folder(capsys, tmp_path):
    code, _, err = run(capsys, *_train_argv(tmp_path / "runs"), "--device", "cuda")
    assert code == 2 and "no CUDA GPU" in err
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_runs_dir_comes_from_the_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_RUNS", str(tmp_path))
    (tmp_path / "20260101-000000-x-aaaaaaaa").mkdir()
    (tmp_path / "20260101-000000-x-aaaaaaaa" / "summary.json").write_bytes(b"\x00")
    code, out, _ = run(capsys, "runs")
    assert code == 0 and "unreadable: spec.json is missing" in out
