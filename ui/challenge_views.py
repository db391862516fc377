"""Challenge page widgets: the teacher's panel, a student's nickname and submission, the live
leaderboard. Rules, nicknames, the submission check and the ranking are explorer.classroom.challenge's;
runs go through the same job queue as the Train page (ui.train_views)."""

from __future__ import annotations

import datetime as dt
import time

import streamlit as st

from explorer.classroom import challenge as cr
from explorer.data import list_datasets
from explorer.errors import UserError
from explorer.text import markdown_plain
from explorer.training.config import TrainConfig
from explorer.training.runs import list_runs
from explorer.units import format_count, format_seconds, format_short
from ui import state, train_views



def current() -> cr.Challenge | None:
    return cr.current_challenge(train_views.runs_dir())


def _deadline_text(c: cr.Challenge) -> str:
    left = c.deadline - time.time()
    if left <= 0:
        return "closed"
    return f"closes in {format_seconds(int(left))}"


def header(c: cr.Challenge | None) -> None:
    if c is None:
        st.info("No challenge is running. The teacher starts one under Teacher below (it needs the teacher's "
                f"code, set on the server as {cr.TEACHER_CODE_ENV}).", icon=":material/flag:")
        return
    st.subheader(markdown_plain(c.title), anchor=False)
    cols = st.columns(4)
    cols[0].metric("Dataset", c.dataset)
    cols[1].metric("Epochs per run", f"{c.max_epochs}")
    cols[2].metric("Parameter budget", format_short(c.max_params), help=f"{format_count(c.max_params)} parameters at most")
    cols[3].metric("Deadline", dt.datetime.fromtimestamp(c.deadline).strftime("%H:%M"), _deadline_text(c),
                   delta_color="off")


def _claim() -> None:
    c = current()
    text = st.session_state.get(state.CH_NICK, "")
    try:
        if c is None:
            raise cr.ConfigError("no challenge is running")
        st.session_state[state.CHALLENGE_NICK] = cr.claim_nickname(train_views.runs_dir(), c, text,
                                                                   train_views.owner())
    except UserError as e:
        st.session_state[state.CHALLENGE_NICK] = None
        state.notify("error", f"Nickname not taken: {state.describe_error(e)}")


def student(c: cr.Challenge) -> None:
    """Nickname, the current network against the budget, and the submit button."""
    nick = st.session_state.get(state.CHALLENGE_NICK)
    st.text_input("Your nickname (shown on the leaderboard)", key=state.CH_NICK, max_chars=cr.MAX_NICKNAME,
                  on_change=_claim, placeholder="e.g. Ada")
    spec = state.spec()
    check = train_views.preflight(spec, _config(c))
    if not check.ok:
        st.error(check.error, icon=":material/error:")
        return
    fits = check.params <= c.max_params
    st.caption(f"Your network from the Build page, fitted to {c.dataset}: {format_count(check.params)} parameters "
               f"({'within' if fits else 'over'} the budget of {format_count(c.max_params)}).")
    st.button("Submit this network", type="primary", icon=":material/send:", on_click=_submit,
              disabled=not (nick and fits and c.open()), key=state.CH_SUBMIT,
              help="Trains it through the shared queue with the challenge's dataset and epochs")
    if not nick:
        st.caption("Type a nickname first.")


def _config(c: cr.Challenge) -> TrainConfig:
    return TrainConfig.from_dict({**train_views.config().to_dict(), "dataset": c.dataset, "epochs": c.max_epochs,
                                  "data_root": None, "overfit": 0, "max_seconds": None})


def _submit() -> None:
    c, nick = current(), st.session_state.get(state.CHALLENGE_NICK)
    try:
        if c is None or not nick:
            raise cr.ConfigError("no challenge is running, or you have no nickname yet")
        config = _config(c)
        check = train_views.preflight(state.spec(), config)
        if not check.ok:
            raise cr.ConfigError(check.error)
        cr.check_submission(c, check.params, config.dataset, config.epochs)
        handle = train_views.queue_handle()
        job = handle.queue.submit(state.spec(), config, owner=train_views.owner())
        cr.record_submission(train_views.runs_dir(), c, nick, train_views.owner(), job.run_dir)
        handle.jobs(force=True)
    except UserError as e:
        state.notify("error", f"Not submitted: {state.describe_error(e)}")
        return
    state.notify("success", f"Submitted as {markdown_plain(nick)}: it trains in the shared queue and appears "
                            f"on the leaderboard when it has a result.")


@st.fragment(run_every=5)
def leaderboard(c: cr.Challenge) -> None:
    """Best run per nickname, refreshed every 5 s while the page is open."""
    train_views.queue_handle().jobs()  # advances the queue (runs start and finish without the Train page)
    root = train_views.runs_dir()
    try:
        entries = cr.submissions(root, c)
    except UserError as e:
        st.error(state.describe_error(e))
        return
    records = {r.path.name: r for r in list_runs(root)}
    by = st.segmented_control("Rank by", ["accuracy", "score"], default="accuracy", key=state.CH_BY,
                              format_func={"accuracy": "Accuracy", "score": "Course score"}.get) or "accuracy"
    frame = cr.leaderboard(entries, records, by=by)
    if frame.empty:
        st.caption("No submissions yet.")
        return
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "Accuracy": st.column_config.NumberColumn(format="percent"),
        "Parameters": st.column_config.NumberColumn(format="localized"),
        "Score": st.column_config.NumberColumn(format="%.2f", help="accuracy / (parameters / 100K)")})
    st.download_button("Download the leaderboard (CSV)", cr.leaderboard_csv(frame), file_name="leaderboard.csv",
                       mime="text/csv", icon=":material/download:", on_click="ignore", key=state.CH_CSV)


def teacher(c: cr.Challenge | None) -> None:
    """The teacher's panel: unlocked by the code; set a new challenge or end the current one."""
    with st.expander("Teacher", icon=":material/school:", expanded=False):
        code = st.text_input("Teacher code", type="password", key=state.CH_CODE)
        if not cr.teacher_code_ok(code):
            st.caption("Type the teacher's code to set or end a challenge.")
            return
        with st.form(state.CH_FORM, border=False):
            st.text_input("Title", "Best accuracy under a parameter budget", max_chars=cr.MAX_TITLE, key=state.CH_TITLE)
            names = [i.name for i in list_datasets() if i.name != "folder"]
            st.selectbox("Dataset", names, index=names.index("mnist5k"), key=state.CH_DATASET)
            st.number_input("Epochs per run", 1, 200, 5, key=state.CH_EPOCHS)
            st.number_input("Parameter budget", 100, 100_000_000, 20_000, step=1_000, key=state.CH_PARAMS)
            st.number_input("Open for (minutes)", 1, 7 * 24 * 60, 45, key=state.CH_MINUTES)
            st.form_submit_button("Start this challenge", type="primary", on_click=_start)
        if c is not None:
            st.button("End the current challenge", key=state.CH_RESET, icon=":material/flag:", on_click=_end)


def _start() -> None:
    """Form callback: the teacher's rules become the current challenge."""
    ss = st.session_state
    try:
        new = cr.new_challenge(ss[state.CH_TITLE], ss[state.CH_DATASET], int(ss[state.CH_EPOCHS]), int(ss[state.CH_PARAMS]),
                               time.time() + 60 * ss[state.CH_MINUTES])
        cr.set_challenge(train_views.runs_dir(), new, ss.get(state.CH_CODE))
    except UserError as e:
        state.notify("error", f"The challenge was not started: {state.describe_error(e)}")


def _end() -> None:
    try:
        cr.reset(train_views.runs_dir(), st.session_state.get(state.CH_CODE))
    except UserError as e:
        state.notify("error", state.describe_error(e))
