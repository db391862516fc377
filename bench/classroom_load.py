"""A class of students on one server: edit latency and memory at N sessions, then 30 training jobs.

    .venv/bin/python bench/classroom_load.py [--sessions 1,10,30] [--edits 6] [--think 1.0]
        [--client ws|browser] [--jobs-sessions 30] [--jobs-per-session 1] [--epochs 1] [--dataset digits]

Part 1, editing. One `streamlit run app.py` server (its own temporary runs folder); a warm-up session
(not counted) loads torch and fills the caches; then for each N in --sessions, N fresh sessions open
the Build page at once (the default LeNet-5) and each makes --edits edits in turn, as a student
does: the batch size B, then the first conv's filter count K, alternately, with --think seconds
(±50%, seeded) between them. One edit's latency runs from sending the new value until the page shows
the new numbers: the caption under the headline numbers names both the exact parameter count
(computed here with explorer.analyze for the new spec) and the batch size, so a stale page never
matches. Printed: p50/p95 per N and their ratio to the first N (the baseline, same process), the
time until a fresh session first shows its numbers, and the server process's resident memory (RSS
at the end of the phase, the highest RSS sampled during it, the kernel's lifetime peak VmHWM) with
the ratio to the baseline. An edit not shown within $CLASSROOM_EDIT_TIMEOUT seconds (120) is lost.

Two clients. --client browser: one headless Chromium (the system one at /usr/bin/chromium), one
browser context per session (own cookies, websocket and session state, as 30 laptops), typing into
the sidebar's number inputs and waiting for the caption's text in the DOM; this includes the
browser's own drawing. On a 2-core machine 30 Chromium renderers and the server cannot share the CPU:
at N=30 no page opened within 120 s, so --client ws (the default) speaks Streamlit's own websocket
protocol instead: the BackMsg/ForwardMsg protobuf classes that ship with streamlit, one connection
per session, sending a rerun with the changed widget's state exactly as the browser does and
timing until the caption's delta arrives. It measures the server (what scales with N), not the
drawing, and costs a few MB per session in this process.

Part 2, training. --jobs-sessions owners (distinct random ids, as the Train page gives each
session) submit --jobs-per-session tiny runs each (LeNet-5 on --dataset, --epochs, CPU) at once from
as many threads, through one shared explorer.training.jobs.JobQueue as the page's cached handle
does. Every submission either becomes a job or is refused with a message (the per-session and
total limits, $CNN_EXPLORER_MAX_QUEUED_PER_SESSION and $CNN_EXPLORER_MAX_QUEUED); the queue is then
advanced until every accepted job has finished. Checked: no submission vanished (accepted +
refused = submitted), every accepted job ended "completed", and the runs folder holds exactly one
run folder with a completed summary.json per accepted job and nothing else.
Exit status 1 when a check fails or an edit's latency could not be measured. The numbers depend on
the machine and on what else runs on it: quote them with the load average (printed before/after).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.support import CHROMIUM, CHROMIUM_ARGS, app_process  # noqa: E402 (one way to start the app)
EDIT_TIMEOUT_S = float(os.environ.get("CLASSROOM_EDIT_TIMEOUT", 120))  # an edit not shown by then is lost
BATCH_LABEL, FILTERS_LABEL = "Batch size B", "Filters K"   # ui/sidebar.py's labels
DEFAULT_BATCH = 32          # ui.state.DEFAULT_BATCH: what a fresh session shows


# --- the server and its memory -------------------------------------------------------------------
@contextmanager
def app_server(runs_dir: Path, log_path: Path):
    """Yield (url, pid) of a fresh `streamlit run app.py` writing runs under runs_dir."""
    with ExitStack() as stack:
        try:
            url, proc = stack.enter_context(app_process(log_path, {"CNN_EXPLORER_RUNS": str(runs_dir)}))
        except RuntimeError as e:  # the server did not start
            raise SystemExit(str(e)) from None
        yield url, proc.pid


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the kernel's peak RSS since start) of a process, KiB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


class RssSampler:
    """The highest RSS of a process seen while the `with` block runs (sampled every `every` s)."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, memory_kib(self.pid).get("VmRSS", 0))
            self._stop.wait(self.every)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, memory_kib(self.pid).get("VmRSS", 0))


# --- part 1: editing sessions --------------------------------------------------------------------
@dataclass
class EditResult:
    sessions: int
    latencies_ms: list[float] = field(default_factory=list)   # one per edit that showed
    first_show_ms: list[float] = field(default_factory=list)  # page open -> headline numbers, per session
    lost: list[str] = field(default_factory=list)              # edits or sessions that never showed
    rss_kib: int = 0
    peak_kib: int = 0
    hwm_kib: int = 0
    wall_s: float = 0.0


def _expected_params(filters: int, cache: dict[int, str] = {}) -> str:  # noqa: B006 - a memo
    """The caption's exact parameter count for LeNet-5 with `filters` filters in its first conv."""
    if filters not in cache:
        from explorer import analyze, load_preset
        from explorer.units import format_count
        from explorer.core.spec import NetworkSpec

        d = load_preset("lenet5").to_dict()
        d["blocks"][0]["out_channels"] = filters
        cache[filters] = format_count(analyze(NetworkSpec.from_dict(d)).totals.params)
    return cache[filters]


def edit_plan(edits: int, start_batch: int = DEFAULT_BATCH, start_filters: int = 6) -> list[tuple[str, int, str, int]]:
    """(label, value, expected params text, expected batch) per edit: batch and filters alternate,
    and every edit changes what the caption shows."""
    batch, filters, plan = start_batch, start_filters, []
    for i in range(edits):
        if i % 2 == 0:
            batch = batch + 1 if batch < 512 else 2
            plan.append((BATCH_LABEL, batch, _expected_params(filters), batch))
        else:
            filters = filters + 2 if filters < 60 else 4
            plan.append((FILTERS_LABEL, filters, _expected_params(filters), batch))
    return plan


SHOWN = """([params, batch]) => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || document.querySelectorAll('[data-testid="stMetricValue"]').length !== 4) return false;
  const text = main.innerText;
  return text.includes(params + ' parameters') && text.includes('batch ' + batch + ' ');
}"""


async def _student(browser, url: str, index: int, plan, think: float, rng: random.Random,
                   result: EditResult) -> None:
    from playwright.async_api import Error as PlaywrightError

    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page = await context.new_page()
        page.set_default_timeout(EDIT_TIMEOUT_S * 1000)
        start = time.perf_counter()
        await page.goto(url)
        try:
            await page.wait_for_function(SHOWN, arg=[_expected_params(6), DEFAULT_BATCH], polling=50)
        except PlaywrightError as e:
            result.lost.append(f"session {index}: the page never showed its numbers ({str(e)[:120]})")
            return
        result.first_show_ms.append((time.perf_counter() - start) * 1000)
        sidebar = page.get_by_test_id("stSidebar")
        await sidebar.get_by_text("Input and memory settings").click()  # the batch size lives in there
        for label, value, params, batch in plan:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            box = sidebar.get_by_role("spinbutton", name=label).first  # the block editor comes before "Add a block"
            try:
                await box.fill(str(value))
                start = time.perf_counter()
                await box.press("Enter")
                await page.wait_for_function(SHOWN, arg=[params, batch], polling=50)
            except PlaywrightError as e:
                result.lost.append(f"session {index}: {label} = {value} never showed ({str(e)[:120]})")
                return  # the page state is unknown now; its later edits would not be comparable
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
    finally:
        await context.close()


class _WsPage:
    """What one Streamlit websocket session shows: the number inputs by label (the first of each
    label, as the browser test picks the block editor's) and the markdown/caption texts."""

    def __init__(self, ws):
        self.ws, self.page_hash, self.inputs = ws, "", {}

    async def rerun(self, states=()) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = self.page_hash
        msg.rerun_script.widget_states.SetInParent()
        for state in states:
            msg.rerun_script.widget_states.widgets.append(state)
        await self.ws.send(msg.SerializeToString())

    async def until_shown(self, params: str, batch: int, timeout: float) -> float:
        """Read messages until a caption names `params` parameters and batch `batch`; the time
        (perf_counter) that message arrived. The rest of the script run is read too (until its
        script_finished), so the next edit starts from a quiet session."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        shown, inputs, deadline = None, {}, time.perf_counter() + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.perf_counter()))
            msg = ForwardMsg.FromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash or self.page_hash
                inputs = {}
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                which = element.WhichOneof("type")
                if which == "number_input":
                    inputs.setdefault(element.number_input.label, element.number_input)
                elif which == "markdown" and shown is None:
                    body = element.markdown.body
                    if f"{params} parameters" in body and f"batch {batch} " in body:
                        shown = time.perf_counter()
            elif kind == "script_finished":
                self.inputs.update(inputs)
                if shown is not None:
                    return shown
                if msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                    raise RuntimeError(f"the run ended without showing {params} parameters at batch {batch}")

    def value_state(self, label: str, value: int):
        from streamlit.proto.NumberInput_pb2 import NumberInput
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        widget = self.inputs[label]
        state = WidgetState(id=widget.id)
        if widget.data_type == NumberInput.INT:
            state.int_value = value
        else:
            state.double_value = float(value)
        return state


async def _ws_student(url: str, index: int, plan, think: float, rng: random.Random, result: EditResult) -> None:
    """One session over Streamlit's own websocket protocol (the protobuf messages the browser sends)."""
    import websockets

    try:
        start = time.perf_counter()
        async with websockets.connect(url.replace("http://", "ws://") + "/_stcore/stream",
                                      subprotocols=["streamlit"], max_size=None, open_timeout=EDIT_TIMEOUT_S,
                                      ping_interval=None) as ws:
            page = _WsPage(ws)
            await page.rerun()
            try:
                shown = await page.until_shown(_expected_params(6), DEFAULT_BATCH, EDIT_TIMEOUT_S)
            except (RuntimeError, asyncio.TimeoutError) as e:
                result.lost.append(f"session {index}: the page never showed its numbers ({e!r:.120})")
                return
            result.first_show_ms.append((shown - start) * 1000)
            for label, value, params, batch in plan:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
                try:
                    state = page.value_state(label, value)
                    start = time.perf_counter()
                    await page.rerun([state])
                    shown = await page.until_shown(params, batch, EDIT_TIMEOUT_S)
                except (KeyError, RuntimeError, asyncio.TimeoutError) as e:
                    result.lost.append(f"session {index}: {label} = {value} never showed ({e!r:.120})")
                    return
                result.latencies_ms.append((shown - start) * 1000)
    except (OSError, websockets.WebSocketException) as e:
        result.lost.append(f"session {index}: the websocket failed ({e!r:.120})")


async def _edit_phase(browser, url: str, pid: int, sessions: int, edits: int, think: float,
                      seed: int) -> EditResult:
    """N sessions at once: browser contexts when `browser` is given, else websocket clients."""
    result = EditResult(sessions)
    plan = edit_plan(edits)
    start = time.perf_counter()
    with RssSampler(pid) as sampler:
        await asyncio.gather(*((_student(browser, url, i, plan, think, random.Random(seed * 1000 + i), result)
                                if browser is not None else
                                _ws_student(url, i, plan, think, random.Random(seed * 1000 + i), result))
                               for i in range(sessions)))
    result.wall_s = time.perf_counter() - start
    mem = memory_kib(pid)
    result.rss_kib, result.peak_kib, result.hwm_kib = mem.get("VmRSS", 0), sampler.peak, mem.get("VmHWM", 0)
    return result


def run_edits(url: str, pid: int, session_counts: list[int], edits: int, think: float = 1.0,
              seed: int = 0, client: str = "ws") -> list[EditResult]:
    """For each N in session_counts, N fresh sessions editing at once: contexts of one Chromium
    (client="browser") or websocket clients (client="ws")."""

    async def go() -> list[EditResult]:
        # warm-up, not counted: the server's first script run imports torch and fills the caches
        await _ws_student(url, -1, [], 0.0, random.Random(seed), EditResult(0))
        results = []
        if client == "ws":
            for n in session_counts:
                results.append(await _edit_phase(None, url, pid, n, edits, think, seed))
                await asyncio.sleep(1.0)
            return results
        from playwright.async_api import async_playwright

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for n in session_counts:
                    results.append(await _edit_phase(browser, url, pid, n, edits, think, seed))
                    await asyncio.sleep(1.0)  # let the server drop the closed sessions' websockets
                return results
            finally:
                await browser.close()

    return asyncio.run(go())


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in 0..100 (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# --- part 2: training jobs -----------------------------------------------------------------------
@dataclass
class JobResult:
    submitted: int = 0
    accepted: list[int] = field(default_factory=list)          # job ids
    refused: dict[str, int] = field(default_factory=dict)      # reason -> count
    statuses: dict[str, int] = field(default_factory=dict)     # final job status -> count
    run_folders: int = 0
    completed_summaries: int = 0
    stray: list[str] = field(default_factory=list)             # run folders without an accepted job
    limits: dict[str, int] = field(default_factory=dict)
    submit_s: float = 0.0
    drain_s: float = 0.0

    @property
    def problems(self) -> list[str]:
        out = []
        refused = sum(self.refused.values())
        if len(self.accepted) + refused != self.submitted:
            out.append(f"{self.submitted - len(self.accepted) - refused} submissions vanished")
        if self.statuses.get("completed", 0) != len(self.accepted):
            out.append(f"not every accepted job completed: {self.statuses}")
        if self.run_folders != len(self.accepted) or self.completed_summaries != len(self.accepted):
            out.append(f"{self.run_folders} run folders and {self.completed_summaries} completed summaries "
                       f"for {len(self.accepted)} accepted jobs")
        if self.stray:
            out.append(f"run folders no job owns: {self.stray[:5]}")
        return out


def _reason(message: str) -> str:
    if "this session already has" in message:
        return "per-session limit"
    if "queue is full" in message:
        return "total limit"
    if "locked" in message:
        return "queue locked"
    return message[:80]


def run_jobs(runs_dir: Path, sessions: int, per_session: int, epochs: int, dataset: str = "digits",
             timeout: float = 1800) -> JobResult:
    """`sessions` owners submit `per_session` runs each at once; wait for every accepted one."""
    from explorer import load_preset
    from explorer.errors import UserError
    from explorer.training import jobs as jobs_mod
    from explorer.training.config import TrainConfig
    from explorer.training.runs import read_json

    queue = jobs_mod.JobQueue(runs_dir)  # one handle shared by every session, as the page caches it
    result = JobResult(submitted=sessions * per_session,
                       limits={"per session": jobs_mod.max_queued_per_session(), "total": jobs_mod.max_queued(),
                               "running on cpu": queue.limits.get("cpu", 0)})
    spec = load_preset("lenet5")
    config = TrainConfig(dataset=dataset, epochs=epochs, device="cpu", batch_size=64)
    lock = threading.Lock()
    go = threading.Barrier(sessions)

    def student(i: int) -> None:
        owner = secrets.token_hex(8)  # as ui.state gives every browser session
        go.wait()
        for _ in range(per_session):
            try:
                job = queue.submit(spec, config, owner=owner)
            except UserError as e:
                with lock:
                    reason = _reason(e.message)
                    result.refused[reason] = result.refused.get(reason, 0) + 1
                continue
            with lock:
                result.accepted.append(job.id)

    start = time.perf_counter()
    threads = [threading.Thread(target=student, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.submit_s = time.perf_counter() - start
    start = time.perf_counter()
    final = queue.wait(sorted(result.accepted), timeout=timeout, poll=0.5) if result.accepted else []
    result.drain_s = time.perf_counter() - start
    for job in final:
        result.statuses[job.status] = result.statuses.get(job.status, 0) + 1
    owned = {job.run_dir.name for job in final}
    folders = [d for d in runs_dir.iterdir() if d.is_dir()]
    result.run_folders = len(folders)
    for d in folders:
        summary = read_json(d / "summary.json")
        if isinstance(summary, dict) and summary.get("status") == "completed":
            result.completed_summaries += 1
        if d.name not in owned:
            result.stray.append(d.name)
    return result


# --- report --------------------------------------------------------------------------------------
def _mib(kib: int) -> str:
    return f"{kib / 1024:7.1f} MiB"


def print_edits(results: list[EditResult], edits: int, think: float, client: str = "ws") -> None:
    base = results[0]
    b50, b95, brss = percentile(base.latencies_ms, 50), percentile(base.latencies_ms, 95), base.peak_kib or 1
    print(f"Build page edits: LeNet-5, {edits} edits per session (batch size and first conv's filters "
          f"alternately), think time {think:g} s ±50%; " + ("one Chromium, one context per session" if client ==
          "browser" else "one Streamlit websocket client per session"))
    print(f"{'N':>4} {'edits':>6} {'lost':>5} {'p50 ms':>8} {'p95 ms':>8} {'p50/N1':>7} {'p95/N1':>7} "
          f"{'open p50':>9} {'RSS end':>12} {'RSS peak':>12} {'peak/N1':>8} {'VmHWM':>12} {'wall s':>7}")
    for r in results:
        p50, p95 = percentile(r.latencies_ms, 50), percentile(r.latencies_ms, 95)
        print(f"{r.sessions:>4} {len(r.latencies_ms):>6} {len(r.lost):>5} {p50:8.0f} {p95:8.0f} "
              f"{p50 / b50:7.2f} {p95 / b95:7.2f} {percentile(r.first_show_ms, 50):8.0f}  "
              f"{_mib(r.rss_kib)} {_mib(r.peak_kib)} {r.peak_kib / brss:8.2f} {_mib(r.hwm_kib)} {r.wall_s:7.1f}")
        for line in r.lost[:5]:
            print(f"       lost: {line}")


def print_jobs(r: JobResult, sessions: int, per_session: int, epochs: int) -> None:
    print(f"Training jobs: {sessions} sessions x {per_session} submitted at once (LeNet-5, digits, "
          f"{epochs} epoch, CPU); limits {r.limits}")
    print(f"  accepted {len(r.accepted)}, refused {sum(r.refused.values())} {r.refused or ''} "
          f"of {r.submitted} submitted in {r.submit_s:.1f} s; all finished in {r.drain_s:.1f} s")
    print(f"  final statuses {r.statuses}; run folders {r.run_folders}, completed summaries "
          f"{r.completed_summaries}")
    print("  nothing lost" if not r.problems else "  PROBLEMS: " + "; ".join(r.problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,10,30", help="comma-separated session counts; the first is "
                                                              "the baseline of the ratios")
    parser.add_argument("--edits", type=int, default=6, help="edits per session")
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a session's edits (±50%%)")
    parser.add_argument("--client", choices=("ws", "browser"), default="ws",
                        help="ws: Streamlit's websocket protocol, one connection per session (reaches 30 on a "
                             "2-core machine); browser: one Chromium context per session")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs-sessions", type=int, default=30, help="sessions submitting runs (0: skip)")
    parser.add_argument("--jobs-per-session", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--keep", action="store_true", help="keep the temporary runs folders and the server log")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each table as soon as it is measured
    counts = [int(n) for n in args.sessions.split(",") if n.strip()]
    if not counts or min(counts) < 1 or args.edits < 1:
        parser.error("--sessions needs counts >= 1 and --edits >= 1")

    failed = False
    with tempfile.TemporaryDirectory(prefix="classroom-load-") as tmp:
        tmp = Path(tmp)
        print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}, "
              f"{os.getloadavg()[1]:.2f}, {os.getloadavg()[2]:.2f}")
        if counts:
            (tmp / "edit-runs").mkdir()
            with app_server(tmp / "edit-runs", tmp / "streamlit.log") as (url, pid):
                results = run_edits(url, pid, counts, args.edits, args.think, args.seed, args.client)
            print_edits(results, args.edits, args.think, args.client)
            failed |= any(r.lost or len(r.latencies_ms) != r.sessions * args.edits for r in results)
        if args.jobs_sessions:
            (tmp / "job-runs").mkdir()
            r = run_jobs(tmp / "job-runs", args.jobs_sessions, args.jobs_per_session, args.epochs, args.dataset)
            print_jobs(r, args.jobs_sessions, args.jobs_per_session, args.epochs)
            failed |= bool(r.problems)
        print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="classroom-load-kept-"))
            os.rename(tmp, kept / "data")
            tmp.mkdir()
            print(f"kept in {kept / 'data'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
