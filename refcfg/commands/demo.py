"""``refcfg demo``: the main job on the built-in default problem, in about a minute on 2 cores.

1. exact fields: identities the notes derive, checked on samples of p_t (eq. 41/42, 59-62, 65);
2. a short CFG training of an MLP (label dropout, notes eq. 66) with a progress bar;
3. CFG sampling with the exact field at several w: class confidence, likelihood, distance to the
   exact conditional law and to the tilted law p(x|y)^w p(x)^(1-w)/Z;
4. learned vs exact: per-t field errors and samples at the same w;
5. figures (PNG and PDF; PNG only with --fast), the interactive page, and a report (HTML,
   self-contained, and Markdown).

The training comes before the exact sampling for the first run on a new machine: when the sampling
jobs run on the CPU kernels (``backend="auto"``'s rule), a child process compiles them
(``refcfg.sampling.ahead``) while this one trains a network on the other core, and section 3 loads
them from numba's cache. The results do not depend on it.

The computations are :mod:`refcfg.experiments.demo`; this module parses and checks the arguments
(all of them before any work), calls those functions, and prints and writes their results.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from ._args import check_int, check_out_dir, field_bytes, require_job, resolve_problem, skipped_text

HELP = (
    "exact fields, CFG sampling, a learned field, figures and a report on the default problem "
    "(about a minute on 2 cores)"
)

DESCRIPTION = (
    "Run the main job of refcfg on one problem and write a report: (1) the notes' identities "
    "checked on exact fields, (2) a short CFG training of an MLP, (3) exact CFG sampling at w in "
    "0, 1, 2, 3, 5 scored against p(x|y) and the tilted law, (4) learned vs exact fields, (5) "
    "figures (PNG and PDF), the interactive page (2-D problems) and report.html / report.md in "
    "--out. Figures and the page that a problem does not support are skipped and listed."
)

BIG_PROBLEM = 100
"""Components above which --fast warns that the exact fields make the run take about a minute."""


def add_parser(sub):
    p = sub.add_parser("demo", help=HELP, description=DESCRIPTION)
    p.add_argument(
        "--problem",
        default="two-class-2d",
        help="problem name or .toml file (default two-class-2d)",
    )
    p.add_argument(
        "--n", type=int, default=4000, help="particles per guidance weight (default 4000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--out", default="refcfg-demo", help="output directory (default ./refcfg-demo)")
    p.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="steps of the short CFG training (default 6000, 40 with --fast; 0 skips training)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="small sizes everywhere (N <= 300, 20 sampler steps, 40 training steps, "
        "coarse figures as PNG only): seconds on the small built-in problems, "
        "minutes on the tree (2032 components)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _step(message: str):
    print(f"   {message}", flush=True)


def _blas_one_thread():
    """Small matrix products (the MLP's 512 x 128 layers) run ~10x faster on one BLAS thread than
    on several competing for 2 busy cores; threadpoolctl, when installed, pins BLAS to one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _reuse_freed_memory() -> None:
    """Let glibc keep freed blocks of up to 32 MB for reuse instead of returning them to the OS at
    once. By default it maps every block over 128 KB afresh and unmaps it when freed, until a larger
    mapped block has been freed (then it raises both thresholds by itself, up to 32 MB / 64 MB).
    The training's per-step arrays (batch 512 x width 64: 256 KB) are such blocks: in a fresh
    process each step faults in new pages (measured: 2000 steps took 9.0 s of CPU, 3.4 s of it in
    the kernel, against 5.0 s once a 32 MB array had been freed). This sets the thresholds glibc
    would reach by itself, from the start, for the whole process (setting them also ends glibc's
    own adjustment of them; a process running the demo in-process, such as a test, keeps them);
    results do not change. Elsewhere than glibc: nothing."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc only: its mallopt parameters
        return
    mallopt = libc.mallopt
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 64 << 20)


def demo_bytes(n: int, fast: bool, mix) -> float:
    """Upper estimate of the demo's peak memory: per guidance weight the samples, their references
    and scores ((n, d) arrays), three field evaluations' temporaries at once, and 256 MiB for the
    figures, the page and the training (sizes that do not grow with --n)."""
    from ..experiments import demo as D

    n = D.sizes(n, fast).n
    K, d = mix.marginal.K, mix.d
    return (
        8.0 * n * d * (4 * len(D.DEMO_WS) + 16)
        + 8.0 * n * K * len(D.DEMO_WS)
        + 3 * field_bytes(n, K, d)
        + float(256 << 20)
    )


def run(args) -> int:
    # every check before any work or output
    check_int(args.n, "--n", 1)
    check_int(args.seed, "--seed", 0)
    if args.train_steps is not None:
        check_int(args.train_steps, "--train-steps", 0)
    out = check_out_dir(args.out)
    resolved = resolve_problem(args.problem)
    require_job(
        demo_bytes(args.n, args.fast, resolved.mixture),
        f"the demo with --n {args.n} on {resolved.label}",
        "--n",
    )
    with _blas_one_thread():
        return _run(args, out, resolved)


def _run(args, out: Path, resolved) -> int:
    from ..experiments import demo as D
    from ..plotting import demo_report as R
    from ..plotting.report import Report

    fast = bool(args.fast)
    sz = D.sizes(args.n, fast, args.train_steps)
    n, steps = sz.n, sz.steps
    progress = not args.no_progress
    path, mix, label = resolved.path, resolved.mixture, resolved.label
    y = 0
    start = time.perf_counter()
    print(
        f"refcfg demo: problem {label} ({mix.n_classes} classes, d = {mix.d}, "
        f"{mix.marginal.K} components), linear schedule, seed {args.seed}, N = {n}"
        + (" [--fast]" if fast else ""),
        flush=True,
    )
    slow = mix.marginal.K > BIG_PROBLEM or not fast
    if fast and mix.marginal.K > BIG_PROBLEM:
        print(
            f"note: --fast keeps the sizes small, but every field evaluation sums over all "
            f"{mix.marginal.K} components of {label}: expect one to a few minutes on 2 cores, "
            f"most of it in the figures (progress below)",
            flush=True,
        )

    report = Report(f"refcfg demo: {label}")
    report.text(R.intro(label, mix, args.seed, args.n, fast))

    _reuse_freed_memory()  # before the training, which now comes before the first large arrays
    ahead = _compile_ahead(path, y, sz)
    try:
        _section("1. exact fields: the notes' identities on samples of p_t")
        t1 = R.result_table(D.exact_checks(path, n, args.seed, progress=_step if slow else None))
        print(t1.to_text())
        report.heading("1. Exact fields").table(t1)

        model = None
        if sz.train_steps > 0:
            _section(f"2. a short CFG training ({sz.train_steps} steps, label dropout eta = 0.1)")
            res = D.train(path, sz.train_steps, args.seed, progress)
            model = res.model
            loss, k = res.final_loss(100)
            print(
                f"   trained {model!r}\n   {res.losses.size} steps in {res.seconds:.1f} s, "
                f"final loss (mean of last {k}) {loss:.4f}"
            )
            out.mkdir(parents=True, exist_ok=True)
            saved = model.save(out / "model.npz")
            print(f"   saved {saved}")
            report.heading("2. A learned CFG field")
            report.text(R.training_text(model, res.losses.size, res.seconds, label, saved))
        else:
            _section("2. a short CFG training: skipped (--train-steps 0)")

        _section(f"3. CFG sampling with the exact field at w in {D.DEMO_WS}")
        _wait_for(ahead)
        t3 = R.result_table(D.cfg_sampling(path, y, n, steps, args.seed, progress=_step))
        print(t3.to_text())
        report.heading("3. CFG with the exact field").table(t3).text(R.CFG_NOTE)

        if model is not None:
            _section("4. learned vs exact")
            fres, sres = D.learned_comparison(path, model, y, n, steps, args.seed)
            ftab, stab = R.result_table(fres), R.result_table(sres)
            print(ftab.to_text())
            print()
            print(stab.to_text())
            report.heading("4. Learned vs exact").table(ftab).table(stab)
        else:
            _section("4. learned vs exact: skipped (no training: --train-steps 0)")
    finally:
        if ahead is not None:
            ahead.close()

    _section("5. figures, interactive page and report")
    fig_dir, page = _figures_and_page(out, path, model, y, args.seed, fast, progress, label, report)
    paths = report.write(out)
    elapsed = time.perf_counter() - start
    print(
        f"   figures: {fig_dir}\n   interactive page: "
        f"{page if page is not None else '(skipped: 2-D problems only)'}\n"
        f"   report: {paths['markdown']}"
    )
    print(f"\ndone in {elapsed:.1f} s. Open the report:\n{paths['html'].resolve()}")
    return 0


def _compile_ahead(path, y, sz):
    """Start compiling section 3's sampling kernels in a child process when its jobs run on them
    (``backend="auto"``'s rule for that job, ``refcfg.sampling.api.resolve_backend``) and there is
    a training to run meanwhile (section 2; sizes ``sz``). None when the jobs run on NumPy (e.g.
    --fast on a small problem) or nothing is trained (the first sampling call then compiles, as
    the child would, with nothing to overlap); an ``Ahead`` otherwise (which may not have started,
    e.g. on one CPU)."""
    from ..experiments import demo as D
    from ..sampling import api
    from ..sampling.ahead import compile_ahead

    n, steps = sz.n, sz.steps
    if sz.train_steps == 0:
        return None
    for w in D.DEMO_WS:
        field = path.cfg(y, w)
        if (
            api.resolve_backend("auto", field, work=api.auto_work(field, n, steps, D.SAMPLER))
            == "cpu"
        ):
            return compile_ahead(field, D.SAMPLER, n=n)
    return None


def _wait_for(ahead) -> None:
    """Before the first sampling call: wait for the compile-ahead child, saying so when it is still
    running (so that nothing stalls silently). When it failed, the sampling call compiles the
    kernels itself and the command line announces that compile as usual."""
    if ahead is None or not ahead.started:
        return
    if not ahead.done:
        t0 = time.perf_counter()
        _step(
            "waiting for the sampling kernels compiling in the background (once for this "
            "machine; where it compiled them before, the background process only loads them) ..."
        )
        ok = ahead.wait()
        if ok:
            _step(f"kernels ready after {time.perf_counter() - t0:.1f} s more")
    else:
        ahead.wait()


def _figures_and_page(out, path, model, y, seed, fast, progress, label, report):
    """Section 5: the figure set into out/figures and, for a 2-D problem, the interactive page,
    both added to the report; returns (the figure directory, the page or None)."""
    from ..plotting import demo_report as R
    from ..plotting import figures, interactive

    fig_dir = out / "figures"
    t0 = time.perf_counter()
    _step(f"figures -> {fig_dir} ...")
    written = figures.make_figures(
        fig_dir,
        path,
        model=model,
        seed=seed,
        formats=("png",) if fast else ("png", "pdf"),
        fast=fast,
        progress=progress,
    )
    _step(f"{len(written)} figure(s) written in {time.perf_counter() - t0:.1f} s")
    skipped = figures.skipped_figures(path, model)
    if "learned_errors" in skipped:
        skipped["learned_errors"] = "no training (--train-steps 0)"
    if skipped:
        _step(skipped_text("figures", skipped, len(figures.FIGURES)))
    report.heading("5. Figures")
    for name, files in written.items():
        report.figure(files[0], caption=figures.CAPTIONS.get(name, name))
    if skipped:
        report.text(R.not_drawn_text(skipped_text("figures", skipped, len(figures.FIGURES))))
    page = None
    if path.d == 2:
        t0 = time.perf_counter()
        _step("interactive page ...")
        page = interactive.write_page(
            out / "interactive.html", path, y=y, fast=fast, seed=seed, problem=label
        )
        _step(f"interactive page written in {time.perf_counter() - t0:.1f} s")
        R.page_link(report)
    else:
        _step(f"skipped the interactive page: it needs a 2-D problem, this one has d = {path.d}")
    return fig_dir, page
