"""`relulab bench`: the engine runs every implementation and reports the schema the issue asks for.

No timing is asserted (the machine is shared and noisy); the tests check what is measured and how it is reported.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from relulab import bench
from relulab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def tiny(**overrides):
    settings = dict(sizes=[4096], members=["relu", "sigmoid", "tanh"], repeats=1, min_sample_s=0.0)
    settings.update(overrides)
    return bench.BenchConfig(**settings)


@pytest.fixture(scope="module")
def result():
    return bench.run_bench(tiny())


def test_rows_have_the_schema(result):
    rows = result["rows"]
    assert rows
    for row in rows:
        assert {"op", "impl", "n", "dtype", "gbps", "seconds", "bytes", "label"} <= set(row)
        assert row["impl"] in ("relulab", "numpy", "torch", "copy")
        assert row["n"] == 4096 and row["dtype"] == "float32"
        assert row["gbps"] > 0 and row["seconds"] > 0
        assert row["gbps"] == pytest.approx(row["bytes"] / row["seconds"] / 1e9)
    json.dumps(result)  # everything is plain JSON


def test_every_member_and_operation_is_timed_for_relulab_numpy_and_torch(result):
    ops = {(r["op"], r["impl"]) for r in result["rows"]}
    for member in ("relu", "sigmoid", "tanh"):
        for op in bench.OPS:
            for impl in ("relulab", "numpy", "torch"):
                assert (f"{member}.{op}", impl) in ops
    labels = {r["label"] for r in result["rows"]}
    # The NumPy idioms and torch calls the issue names, and both copies.
    assert {"np.maximum(x, 0)", "np.maximum(x, 0, out=y)", "x * (x > 0)", "np.where(x > 0, x, 0)",
            "F.relu(x)", "F.relu_(x)", "torch.clamp_min(x, 0, out=y)", "np.copyto(y, x), 1 thread"} <= labels
    assert any(r["impl"] == "copy" and "threads" in r["label"] for r in result["rows"])
    # Bytes: read + written, two arrays of n float32 for a forward into a buffer.
    relu_out = next(r for r in result["rows"] if r["op"] == "relu.forward_out")
    assert relu_out["bytes"] == 2 * 4096 * 4


def test_fused_operations_are_timed_against_their_unfused_compositions(result):
    fused_rows = [r for r in result["rows"] if r["op"].startswith("fused.")]
    assert {r["op"] for r in fused_rows} == {"fused.relu_mask", "fused.relu_backward_mask", "fused.bias_relu"}
    for op in ("fused.relu_mask", "fused.relu_backward_mask", "fused.bias_relu"):
        variants = {r["variant"] for r in fused_rows if r["op"] == op}
        assert {"fused", "unfused"} <= variants
        entry = next(e for e in result["summary"] if e["op"] == op)
        assert entry["vs_unfused"] > 0


def test_summary_ratios_and_the_claim(result):
    entry = next(e for e in result["summary"] if e["op"] == "relu.forward_out")
    for key in ("relulab_gbps", "numpy_gbps", "torch_gbps", "copy_gbps", "vs_numpy", "vs_torch", "vs_copy"):
        assert entry[key] > 0
    relulab = next(r for r in result["rows"] if r["op"] == "relu.forward_out" and r["impl"] == "relulab")
    numpy_best = max((r for r in result["rows"] if r["op"] == "relu.forward_out" and r["impl"] == "numpy"),
                     key=lambda r: r["gbps"])
    assert entry["vs_numpy"] == pytest.approx(numpy_best["seconds"] / relulab["seconds"])
    (claim,) = result["claim"]
    for key in ("numpy_sigmoid_per_relu", "numpy_tanh_per_relu", "torch_sigmoid_per_relu", "torch_tanh_per_relu"):
        assert claim[key] > 0
    text = bench.format_report(result)
    assert "n = 4,096 float32 (16 KiB per array)" in text
    assert "relu.forward_out" in text and "fused.bias_relu" in text
    assert "time of sigmoid and tanh per time of relu" in text


def test_without_torch_the_torch_rows_are_skipped_with_a_note():
    result = bench.run_bench(tiny(members=["relu"], torch=False, fused=False))
    assert {r["impl"] for r in result["rows"]} == {"relulab", "numpy", "copy"}
    assert "torch rows off" in result["machine"]["torch"]
    assert "torch" in bench.format_report(result)


def test_cli_quick_json(capsys):
    code = main(["bench", "--quick", "--json", "--sizes", "4K", "--members", "relu", "tanh", "--repeats", "1"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["quick"] is True and result["config"]["sizes"] == [4096]
    assert {r["op"].split(".")[0] for r in result["rows"]} == {"relu", "tanh", "fused"}


def test_cli_errors_exit_2(capsys):
    assert main(["bench", "--sizes", "lots"]) == 2
    assert ("size must be an element count such as 65536, 64K, 4M or 2^20, or bytes per array such as 64KiB or "
            "256MiB; got 'lots'") in capsys.readouterr().err
    assert main(["bench", "--members", "identity"]) == 2  # every member but identity is timed (mish since issue 15)
    err = capsys.readouterr().err
    assert "members must be among relu, leaky_relu" in err and "identity is not timed" in err
    assert main(["bench", "--members", "no_such_member"]) == 2
    assert "no_such_member" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's choices
        main(["bench", "--dtype", "float32", "int8"])
    assert exit_info.value.code == 2 and "invalid choice: 'int8'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="dtype must be float16, float32 or float64; got 'int8'"):
        bench.run_bench(tiny(dtype=["float32", "int8"]))
    assert main(["bench", "--repeats", "0"]) == 2


def test_parse_size():
    assert bench.parse_size("65536") == 65536
    assert bench.parse_size("64K") == 65536
    assert bench.parse_size("4M") == 4 << 20
    assert bench.parse_size("2^20") == bench.parse_size("2**20") == 1 << 20
    with pytest.raises(ValueError, match="at least 64"):
        bench.parse_size("8")
    # Bytes per array: the same memory for every dtype.
    assert bench.parse_size("64KiB") == 65536 and isinstance(bench.parse_size("64KiB"), bench.ByteSize)
    assert bench.parse_size("256MiB") == 256 << 20 and str(bench.parse_size("256MiB")) == "256MiB"
    assert bench.parse_size("4096B") == 4096 and str(bench.parse_size("4096B")) == "4KiB"
    assert bench.elements_for(bench.parse_size("64KiB"), np.dtype("float64")) == 8192
    assert bench.elements_for(bench.parse_size("64KiB"), np.dtype("float32")) == 16384
    assert bench.elements_for(65536, np.dtype("float64")) == 65536  # an element count stays one
    with pytest.raises(ValueError, match="bytes per array such as 64KiB"):
        bench.parse_size("64XiB")


def test_byte_sizes_time_the_same_memory_in_every_dtype():
    result = bench.run_bench(tiny(sizes=[bench.parse_size("8KiB")], members=["relu"], dtype=["float32", "float64"],
                                  fused=False, torch=False))
    sizes = {(row["dtype"], row["n"]) for row in result["rows"]}
    assert sizes == {("float32", 2048), ("float64", 1024)}
    assert result["config"]["sizes"] == ["8KiB"]
    assert "--sizes 8KiB " in bench.format_markdown(result)
    with pytest.raises(ValueError, match="at least 64 elements; got 256B .float64."):
        bench.run_bench(tiny(sizes=[bench.parse_size("256B")], members=["relu"], dtype=["float32", "float64"]))


def test_the_benchmark_script_calls_the_same_engine(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_family.py", "--json", "--sizes", "1K", "--members", "tanh",
                                      "--repeats", "1", "--no-torch"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "benchmarks" / "bench_family.py"), run_name="__main__")
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["config"]["members"] == ["tanh"]


def test_default_members_are_every_member_but_identity():
    from relulab import family

    assert bench.BenchConfig().members == bench.MEMBERS
    assert list(bench.MEMBERS) == [name for name in family.names() if name != "identity"]
    assert set(bench.SKIPPED) == {"identity"}
    assert bench.OPS == ("forward", "forward_out", "forward_inplace", "grad", "grad_out")


def test_several_dtypes_in_one_run_and_the_ratio_table():
    result = bench.run_bench(tiny(members=["relu", "mish"], dtype=["float32", "float64"], fused=False))
    assert result["config"]["dtypes"] == ["float32", "float64"] and "dtype" not in result["config"]
    assert {(r["dtype"], r["n"]) for r in result["rows"]} == {("float32", 4096), ("float64", 4096)}
    for entry in result["summary"]:
        best = min(entry["vs_numpy"], entry["vs_torch"])  # the faster peer: the smaller time(peer) / time(relulab)
        assert entry["vs_peer"] == pytest.approx(best)
        # the copies are timed once per member and size, with its forward into a buffer, and serve all its ops
        assert entry["copy_gbps"] > 0
    sizes, matrix = bench.ratio_matrix(result["summary"], "float64")
    assert sizes == [4096]
    assert [op for op, _ in matrix] == [f"{m}.{op}" for m in ("relu", "mish") for op in bench.OPS]
    mish_grad = next(e for e in result["summary"] if e["op"] == "mish.grad" and e["dtype"] == "float64")
    assert dict(matrix)["mish.grad"] == [mish_grad["vs_peer"]]
    text = bench.format_report(result)
    assert "n = 4,096 float64 (32 KiB per array)" in text and "every size" in text
    single = bench.run_bench(tiny(members=["relu"], fused=False, torch=False))
    assert single["config"]["dtype"] == "float32" and single["config"]["dtypes"] == ["float32"]


def test_markdown_tables_written_atomically_between_the_markers(tmp_path):
    result = bench.run_bench(tiny(members=["relu", "tanh"], dtype=["float32", "float64"]))
    new = tmp_path / "tables.md"
    bench.write_markdown(result, new)
    text = new.read_text()
    assert text.startswith(bench.MARKDOWN_BEGIN) and text.rstrip().endswith(bench.MARKDOWN_END)
    assert "| op | 16 KiB |" in text and "| op | 32 KiB |" in text  # the every-size tables, one per dtype
    assert "| 16 KiB float32 | relulab GB/s |" in text and "| 32 KiB float64 | relulab GB/s |" in text
    entry = next(e for e in result["summary"] if e["op"] == "tanh.grad_out" and e["dtype"] == "float32")
    cell = f"{entry['vs_peer']:.2f}"
    assert f"| tanh.grad_out | {'**' + cell + '**' if entry['vs_peer'] < 1 else cell} |" in text
    assert "fused, 16 KiB float32" in text and "identity is not timed" in text

    readme = tmp_path / "README.md"
    readme.write_text(f"# title\nbefore\n{bench.MARKDOWN_BEGIN}\nold tables\n{bench.MARKDOWN_END}\nafter\n")
    bench.write_markdown(result, readme)
    regenerated = readme.read_text()
    assert regenerated.startswith("# title\nbefore\n" + bench.MARKDOWN_BEGIN) and regenerated.endswith(
        bench.MARKDOWN_END + "\nafter\n")
    assert "old tables" not in regenerated and regenerated.count(bench.MARKDOWN_BEGIN) == 1

    plain = tmp_path / "notes.md"
    plain.write_text("my notes\n")
    with pytest.raises(ValueError, match="exists without the lines"):
        bench.write_markdown(result, plain)
    assert plain.read_text() == "my notes\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_cli_markdown_is_checked_before_the_run(tmp_path, capsys):
    plain = tmp_path / "notes.md"
    plain.write_text("my notes\n")
    assert main(["bench", "--markdown", str(plain), "--members", "relu"]) == 2
    assert "exists without the lines <!-- relulab bench: begin -->" in capsys.readouterr().err
    assert main(["bench", "--markdown", str(tmp_path / "missing" / "t.md")]) == 2
    assert "its folder does not exist" in capsys.readouterr().err
    out = tmp_path / "t.md"
    assert main(["bench", "--quick", "--sizes", "1K", "--members", "relu", "--repeats", "1", "--no-torch", "--quiet",
                 "--dtype", "float32", "float64", "--markdown", str(out)]) == 0
    assert "| relu.grad_out |" in out.read_text() and "relu.grad_out" in capsys.readouterr().out


def test_a_slow_peer_is_timed_once_the_others_interleaved(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])

    def takes(seconds):
        return lambda: clock.__setitem__(0, clock[0] + seconds)

    impls = [bench.Impl("relulab", "fast", takes(0.02)), bench.Impl("numpy", "slow", takes(0.1)),
             bench.Impl("torch", "close", takes(0.05)), bench.Impl("copy", "copy", takes(0.2))]
    case = bench.Case("relu.forward", "relu", 1 << 20, "float32", 8 << 20, impls)
    bench.time_case(case, repeats=3, min_sample_s=0.01)
    # numpy: 5x relulab's time and over 5 samples' time (0.05 s): its warm-up call is its only sample
    assert [len(impl.times) for impl in impls] == [3, 1, 3, 3]
    assert impls[1].times == [pytest.approx(0.1)] and impls[2].times == [pytest.approx(0.05)] * 3
    rows = bench._rows(case)
    assert [row["samples"] for row in rows] == [3, 1, 3, 3]


def test_a_cold_first_call_does_not_set_the_sample_size(monkeypatch):
    # relulab's first call at a new size may compile its threaded kernel (0.2-0.3 s): a sample must still hold as
    # many warm calls as min_sample_s needs, not one cold-sized call (which read 5-8x slow in the README table).
    clock = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)
    calls = []

    def relulab_call():
        clock[0] += 0.3 if not calls else 0.001  # cold, then warm
        calls.append(1)

    slow_peer_calls = []

    def peer_call():
        clock[0] += 0.5  # a peer as slow as 50 samples: its first call is counted from as it is
        slow_peer_calls.append(1)

    impls = [bench.Impl("relulab", "cold then warm", relulab_call), bench.Impl("numpy", "slow", peer_call)]
    case = bench.Case("relu.forward", "relu", 1 << 18, "float32", 2 << 20, impls)
    bench.time_case(case, repeats=2, min_sample_s=0.01)
    assert impls[0].times == [pytest.approx(0.001)] * 2  # each sample: 10 warm calls of 1 ms
    # warm-up: 0.3 s, 1 ms (under half: again), 1 ms (settled); then per sample one untimed call and 10 timed
    assert len(calls) == 3 + 2 * (1 + 10)
    assert len(slow_peer_calls) == 1 and impls[1].times == [pytest.approx(0.5)]  # the slow-peer rule


def test_torch_runs_at_its_default_wait_policy_and_a_sample_after_it_waits(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    torch, note = bench._import_torch(True)
    if torch is None:
        pytest.skip(note)
    assert "OMP_WAIT_POLICY" not in bench.os.environ and "OMP_WAIT_POLICY" not in note
    clock = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    pauses = []
    monkeypatch.setattr(bench.time, "sleep", pauses.append)
    monkeypatch.setattr(bench, "_previous", [""])
    ran = []
    impls = [bench.Impl("relulab", "a", lambda: ran.append("relulab") or clock.__setitem__(0, clock[0] + 0.02)),
             bench.Impl("torch", "b", lambda: ran.append("torch") or clock.__setitem__(0, clock[0] + 0.02))]
    bench.time_case(bench.Case("relu.forward", "relu", 1 << 18, "float32", 2 << 20, impls), repeats=3,
                    min_sample_s=0.01)
    # warm-ups (relulab, torch), then per repeat (relulab, torch), (torch, relulab), (relulab, torch): a call of
    # relulab follows torch's twice, and each time the pause comes first
    switches = sum(1 for a, b in zip(ran, ran[1:]) if a == "torch" and b != "torch")
    assert switches == 2 and pauses == [bench.SETTLE_S] * 2
    assert ran[-1] == "torch"  # the case ended with torch: the next case's first call waits too
    bench._time_calls(impls[0], 1)
    assert pauses == [bench.SETTLE_S] * 3
